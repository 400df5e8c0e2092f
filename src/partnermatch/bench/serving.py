"""What the server benchmarks (`bench auth`, `bench portal`) share: the real server, granian on loopback as
a subprocess, a bounded load in interleaved rounds from one asyncio client, and what it cost.

Besides requests/s and latencies, every scenario records the CPU time of the server's processes (read
from /proc) and of the load client (this process) while it ran. The load client runs on the same
machine and needs CPU too, which pulls all requests/s towards one another; and when other work competes
for the CPUs, requests/s and latencies move with it. The server's CPU time per request is affected by
neither, so it is the steadier estimate of what a request costs a CPU-bound server. The client's CPU
time beside the wall time says whether the client, rather than the server, was the bottleneck."""

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Figures:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    errors: int
    # CPU time of the server's processes while they served these requests (None without /proc).
    server_cpu: float | None = None
    # CPU time of the load client (this process) meanwhile.
    client_cpu: float | None = None

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_request(self) -> float | None:
        if self.server_cpu is None or not self.requests:
            return None
        return self.server_cpu / self.requests

    @property
    def client_cpu_per_request(self) -> float | None:
        if self.client_cpu is None or not self.requests:
            return None
        return self.client_cpu / self.requests

    @property
    def client_busy(self) -> float | None:
        """The share of one CPU the load client used: near 100%, the client may be the bottleneck."""
        if self.client_cpu is None or not self.seconds:
            return None
        return self.client_cpu / self.seconds

    def percentile(self, p: float) -> float:
        """Milliseconds."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else 0.0


@dataclass(frozen=True)
class Scenario:
    name: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)


def load_average(when: str) -> str:
    # Other work on the machine moves the absolute figures; the ratios between scenarios move less.
    one, five, fifteen = os.getloadavg()
    return f"load average {when}: {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def server_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by a process and its descendants (granian's workers).

    Unlike requests/s, this hardly moves when other work competes for the CPUs, so on a shared
    machine it is the steadier measure of what a request costs the server."""
    proc = Path("/proc")
    if not (proc / str(pid) / "stat").exists():
        return None
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # The command name (in parentheses) may hold spaces; the fields after it are fixed.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # a process that ended meanwhile
        child = int(stat.parent.name)
        parents[child] = int(fields[1])
        times[child] = int(fields[11]) + int(fields[12])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(times.get(p, 0) for p in tree) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(
    factory: str, env: Mapping[str, str], port: int, workers: int, *, start_seconds: float = 60
) -> Iterator[tuple[str, int]]:
    """granian serving the app factory ``module:function`` on 127.0.0.1:port, as `partnermatch serve` runs
    it (cli.serve_app), until the block ends; yields the base URL and the server's process id. ``env``
    adds to this process's environment (PARTNERMATCH_DATABASE_URL, PARTNERMATCH_VAR_DIR, ...)."""
    command = [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        factory,
    ]
    environment = {**os.environ, "PARTNERMATCH_LOG_LEVEL": "WARNING", **env}
    # Its log goes to a file, not a pipe: a pipe nobody reads stalls a server that logs a lot (a
    # traceback per failed request), and the file tells what went wrong when a run fails.
    log = Path(tempfile.mkstemp(prefix="partnermatch-bench-server-", suffix=".log")[1])
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=output)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_seconds
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited: {log.read_text(errors='replace')[-4000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start within {start_seconds:.0f} s")
            time.sleep(0.2)
        yield base, process.pid
    except Exception:
        sys.stderr.write(
            f"the server's log ({log}), last lines:\n{log.read_text(errors='replace')[-4000:]}\n"
        )
        raise
    else:
        log.unlink()
    finally:
        process.terminate()
        process.wait(timeout=20)


async def load(
    client: httpx.AsyncClient,
    server_pid: int,
    scenario: Scenario,
    requests: int,
    concurrency: int,
    seconds: float,
) -> Figures:
    """Up to ``requests`` GETs of the scenario's URL from ``concurrency`` workers, for at most ``seconds``,
    after up to 100 sequential ones that warm connections and caches up."""
    headers = dict(scenario.headers)
    for _ in range(min(100, requests)):
        (await client.get(scenario.url, headers=headers)).raise_for_status()
    latencies: list[float] = []
    errors = 0
    remaining = requests
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal remaining, errors
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            started = time.perf_counter()
            response = await client.get(scenario.url, headers=headers)
            latencies.append(time.perf_counter() - started)
            errors += response.status_code != 200

    cpu_before = server_cpu(server_pid)
    client_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - client_before
    # Work after the response (session touches, recorded impressions) belongs to these requests too.
    await asyncio.sleep(0.2)
    cpu_after = server_cpu(server_pid)
    cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    return Figures(scenario.name, len(latencies), elapsed, latencies, errors, cpu, client_cpu)


def combined(runs: Sequence[Figures]) -> Figures:
    """One scenario's rounds as one: counts, times and CPU added up, latencies pooled."""
    return Figures(
        runs[0].name,
        sum(f.requests for f in runs),
        sum(f.seconds for f in runs),
        [latency for f in runs for latency in f.latencies],
        sum(f.errors for f in runs),
        None if any(f.server_cpu is None for f in runs) else sum(f.server_cpu or 0.0 for f in runs),
        None if any(f.client_cpu is None for f in runs) else sum(f.client_cpu or 0.0 for f in runs),
    )


async def measure(
    client: httpx.AsyncClient,
    server_pid: int,
    scenarios: Sequence[Scenario],
    *,
    requests: int,
    concurrency: int,
    seconds: float,
    rounds: int,
) -> list[Figures]:
    """Every scenario once per round, in interleaved rounds, so that drift of the machine (other load,
    CPU boost) hits all alike; one combined Figures per scenario, in the scenarios' order."""
    results: dict[str, list[Figures]] = {s.name: [] for s in scenarios}
    for _ in range(rounds):
        for scenario in scenarios:
            results[scenario.name].append(
                await load(client, server_pid, scenario, requests, concurrency, seconds)
            )
    return [combined(results[s.name]) for s in scenarios]


def client_for(base: str, concurrency: int) -> httpx.AsyncClient:
    """The load client: one connection per concurrent worker, kept alive."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(base_url=base, limits=limits, timeout=30)


def cookie_header(*responses: httpx.Response) -> str:
    """The cookies the responses set, as a browser sends them back. By hand, because the load client talks
    plain HTTP to loopback and so would not send the Secure (``__Host-``) cookies itself."""
    jar: dict[str, str] = {}
    for response in responses:
        jar.update(response.cookies.items())
    return "; ".join(f"{name}={value}" for name, value in jar.items())
