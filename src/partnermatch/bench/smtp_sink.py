"""A mail server on loopback that accepts every message and keeps only counts: the benchmarks' sink.

Run as its own process (``python -m partnermatch.bench.smtp_sink --port P --stats FILE``) so that its
work does not share the measured process's interpreter. Every 0.2 s it writes what it received so far
to FILE as JSON (``messages``, ``bytes``, the monotonic-clock times of the first and the last message),
replacing the file whole so that a reader never sees half of it."""

import argparse
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

REPORT_SECONDS = 0.2


class Counter:
    """aiosmtpd's handler: accepts and counts."""

    def __init__(self, keep: int = 0, keep_dir: Path | None = None) -> None:
        self.keep = keep
        self.keep_dir = keep_dir
        self.messages = 0
        self.bytes = 0
        self.first: float | None = None
        self.last: float | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.monotonic()
        self.first = self.first or now
        self.last = now
        self.messages += 1
        self.bytes += len(envelope.content)
        if self.keep_dir is not None and self.messages <= self.keep:
            (self.keep_dir / f"{self.messages:06d}.eml").write_bytes(envelope.original_content)
        return "250 Message accepted for delivery"

    def figures(self) -> dict[str, Any]:
        return {"messages": self.messages, "bytes": self.bytes, "first": self.first, "last": self.last}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stats", type=Path, required=True)
    parser.add_argument("--keep", type=int, default=0, help="Write the first N messages to --keep-dir")
    parser.add_argument("--keep-dir", type=Path, default=None)
    arguments = parser.parse_args()
    if arguments.keep_dir is not None:
        arguments.keep_dir.mkdir(parents=True, exist_ok=True)
    counter = Counter(arguments.keep, arguments.keep_dir)
    controller = Controller(counter, hostname="127.0.0.1", port=arguments.port, data_size_limit=0)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    controller.start()
    scratch = arguments.stats.with_suffix(".tmp")
    try:
        while not stopped.wait(REPORT_SECONDS):
            scratch.write_text(json.dumps(counter.figures()))
            os.replace(scratch, arguments.stats)
    finally:
        controller.stop()
        scratch.write_text(json.dumps(counter.figures()))
        os.replace(scratch, arguments.stats)


if __name__ == "__main__":
    main()
