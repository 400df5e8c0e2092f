"""The floor of `partnermatch bench digests`: pre-rendered messages handed to the sink alone.

Run as ``python -m partnermatch.bench.smtp_floor KEPT_DIR COUNT PORT SENDER``; imports nothing but the
standard library, so that its start-up and memory are those of the sending alone. Sends ``COUNT`` of the
messages in KEPT_DIR (cycled), one connection per batch of the outbox's size as the delivery does, and
prints JSON: the monotonic time (the system's clock, shared by processes) when sending started, and
the messages' mean size."""

import json
import smtplib
import sys
import time
from itertools import cycle, islice
from pathlib import Path

# As partnermatch.outbox.service.BATCH: the delivery's batch (and connection) size.
BATCH = 50


def send_prepared(kept: Path, count: int, port: int, sender: str) -> dict[str, float]:
    messages = [path.read_bytes() for path in sorted(kept.glob("*.eml"))]
    started = time.monotonic()
    for start in range(0, count, BATCH):
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            for number, body in enumerate(islice(cycle(messages), start, min(start + BATCH, count))):
                client.sendmail(sender, [f"floor{start + number}@bench.example.org"], body)
    return {"started": started, "mean_bytes": sum(len(m) for m in messages) / len(messages)}


if __name__ == "__main__":
    folder, number, smtp_port, address = sys.argv[1:5]
    print(json.dumps(send_prepared(Path(folder), int(number), int(smtp_port), address)))
