"""`partnermatch bench ranking`: training, full recompute, on-demand latency and memory of the ranking model.

It prints figures; it is not a test and asserts nothing. The floor it compares the full recompute with is
one sparse TF-IDF product of companies x leads: any scoring that looks at every pair costs at least that.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table
from sklearn.feature_extraction.text import TfidfVectorizer

from ml.training import RankingTrainer, interacted_before
from partnermatch.ranking.data import Companies, Dataset, load_dataset
from partnermatch.ranking.features import open_leads
from partnermatch.ranking.model import RankingModel

RECOMPUTE_TOP = 50
FLOOR_STAGE = "TF-IDF floor"
SERVING_LIMIT = 10
GOALS = {
    "training": "≤ 60 s",
    "full recompute": "≤ 60 s",
    "on-demand p99": "≤ 50 ms",
    "peak memory": "≤ 2 GB",
}


@dataclass
class RankingFigures:
    companies: int
    leads: int
    open_leads: int
    interactions: int
    load_seconds: float
    training_seconds: float
    recompute_seconds: float
    recompute_companies: int
    latencies_ms: list[float]
    profile_ms: list[float]
    rank_ms: list[float]
    cpu_ms: list[float]
    """Process CPU time per request: what it costs without the waits of a busy machine."""
    floor_seconds: float
    floor_all_seconds: float
    peak_mb_after: dict[str, float] = field(default_factory=dict)
    load_average: dict[str, float] = field(default_factory=dict)
    """The 1-minute load average when each stage ended: on a shared machine, figures mean little without it."""

    def percentile(self, q: float, values: list[float] | None = None) -> float:
        values = self.latencies_ms if values is None else values
        return float(np.percentile(values, q * 100)) if values else float("nan")

    @property
    def peak_mb(self) -> float:
        # The TF-IDF floor is measured last and is not part of the system, so it does not count.
        return max((v for k, v in self.peak_mb_after.items() if k != FLOOR_STAGE), default=0.0)


def peak_kb() -> int:
    # VmHWM is this process image's own high-water mark; ru_maxrss would also count a parent before exec.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def generate_in_child(directory: Path, companies: int, leads: int, seed: int) -> None:
    # A separate process, so the generator's memory does not count towards the model's peak.
    command = [
        sys.executable,
        "-m",
        "partnermatch",
        "generate",
        str(directory),
        "--companies",
        str(companies),
        "--leads",
        str(leads),
        "--seed",
        str(seed),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"generating the dataset failed:\n{completed.stderr}")


def new_companies(ds: Dataset, n: int, at: float, seed: int) -> Companies:
    """Profiles of ``n`` existing companies under fresh ids: unknown to the fitted state, so each request
    encodes its profile and scores it without history -- the serving path's cold start -- on realistic texts."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(ds.companies), size=min(n, len(ds.companies)), replace=False)
    fresh = ds.companies.take(rows)
    return dataclasses.replace(
        fresh,
        ids=[f"bench-new-{i}" for i in range(len(fresh))],
        registered=np.full(len(fresh), at, dtype=np.float64),
    )


def serve_new_company(model: RankingModel, company: Companies, lead_ids: list[str]) -> tuple[float, float]:
    """What ``recommendations.service`` does on demand for a company created after training, minus the
    database: add its profile to the fitted state, then score its candidates among the open leads and explain
    the top ones.
    Returns the milliseconds of the two steps, so a missed goal says where the time goes."""
    started = time.perf_counter()
    state = model.with_profiles(company)
    profiled = time.perf_counter()
    model.rank(company.ids[0], lead_ids, limit=SERVING_LIMIT, state=state)
    done = time.perf_counter()
    return (profiled - started) * 1000, (done - profiled) * 1000


def tfidf_floor(ds: Dataset, lead_rows: np.ndarray) -> float:
    """Seconds of one sparse product X_companies @ X_leads.T (the vectoriser is fitted outside the timing)."""
    texts = ds.leads.texts()
    vectorizer = TfidfVectorizer(sublinear_tf=True, dtype=np.float32).fit(
        [*ds.companies.descriptions, *texts]
    )
    X_companies = vectorizer.transform(ds.companies.descriptions)
    X_leads = vectorizer.transform([texts[i] for i in lead_rows])
    started = time.perf_counter()
    product = X_companies @ X_leads.T
    seconds = time.perf_counter() - started
    del product
    return seconds


def bench_ranking(
    *,
    companies: int,
    leads: int,
    seed: int,
    data: Path | None,
    requests: int,
    model_params: dict[str, Any],
    report: Callable[[str], None],
) -> RankingFigures:
    with tempfile.TemporaryDirectory(prefix="partnermatch-bench-ranking-") as scratch:
        directory = data
        if directory is None:
            directory = Path(scratch) / "dataset"
            report(f"generating {companies:,} companies x {leads:,} leads (seed {seed}) ...")
            generate_in_child(directory, companies, leads, seed)
        peak: dict[str, float] = {}

        started = time.perf_counter()
        ds = load_dataset(directory)
        load_seconds = time.perf_counter() - started
        peak["load"] = peak_kb() / 1024
        load_average = {"start": os.getloadavg()[0]}
        report(
            f"loaded {len(ds.companies):,} companies, {len(ds.leads):,} leads, "
            f"{len(ds.interactions):,} interactions in {load_seconds:.1f} s; training ..."
        )

        started = time.perf_counter()
        model = RankingTrainer(**{"random_state": seed, **model_params}).fit(ds).model_
        training_seconds = time.perf_counter() - started
        peak["training"] = peak_kb() / 1024
        load_average["training"] = os.getloadavg()[0]
        report(f"trained in {training_seconds:.1f} s; full recompute ...")

        # A batch job ranks for every company, chunk by chunk, as the stored recommendations do.
        every = np.arange(len(ds.companies), dtype=np.int64)
        started = time.perf_counter()
        universe = open_leads(model.state_)
        seen = interacted_before(ds, model.cutoff_)[:, universe]
        model.score_in_chunks(model.state_, every, universe, RECOMPUTE_TOP, lambda _chunk: None, seen)
        recompute_seconds = time.perf_counter() - started
        peak["full recompute"] = peak_kb() / 1024
        load_average["full recompute"] = os.getloadavg()[0]
        report(f"recomputed in {recompute_seconds:.1f} s; {requests} on-demand requests ...")

        lead_ids = [model.state_.leads.ids[j] for j in universe]
        fresh = new_companies(ds, requests, model.cutoff_, seed)
        # One untimed request: first calls pay for imports and thread pools, which a running server has paid.
        serve_new_company(model, fresh.take([0]), lead_ids)
        latencies: list[float] = []
        profile_ms: list[float] = []
        rank_ms: list[float] = []
        cpu_ms: list[float] = []
        for i in range(len(fresh)):
            one = fresh.take([i])
            started, cpu = time.perf_counter(), time.process_time()
            profile, ranking = serve_new_company(model, one, lead_ids)
            latencies.append((time.perf_counter() - started) * 1000)
            cpu_ms.append((time.process_time() - cpu) * 1000)
            profile_ms.append(profile)
            rank_ms.append(ranking)
        peak["on-demand"] = peak_kb() / 1024
        load_average["on-demand"] = os.getloadavg()[0]

        floor_seconds = tfidf_floor(ds, universe)
        floor_all_seconds = tfidf_floor(ds, np.arange(len(ds.leads)))
        peak[FLOOR_STAGE] = peak_kb() / 1024

        return RankingFigures(
            companies=len(ds.companies),
            leads=len(ds.leads),
            open_leads=len(universe),
            interactions=len(ds.interactions),
            load_seconds=load_seconds,
            training_seconds=training_seconds,
            recompute_seconds=recompute_seconds,
            recompute_companies=len(every),
            latencies_ms=latencies,
            profile_ms=profile_ms,
            rank_ms=rank_ms,
            cpu_ms=cpu_ms,
            floor_seconds=floor_seconds,
            floor_all_seconds=floor_all_seconds,
            peak_mb_after=peak,
            load_average=load_average,
        )


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def figures_table(f: RankingFigures) -> Table:
    table = Table(
        title=f"ranking benchmark: {f.companies:,} companies x {f.leads:,} leads "
        f"({f.open_leads:,} open), {f.interactions:,} interactions"
    )
    for column in ("figure", "value", "goal", ""):
        table.add_column(column, justify="left" if column in ("figure", "") else "right")
    p50, p99 = f.percentile(0.5), f.percentile(0.99)
    table.add_row("dataset load", f"{f.load_seconds:.1f} s", "", "")
    table.add_row(
        "training",
        f"{f.training_seconds:.1f} s",
        GOALS["training"],
        _verdict(f.training_seconds <= 60),
    )
    table.add_row(
        f"full recompute (top {RECOMPUTE_TOP}, {f.recompute_companies:,} companies)",
        f"{f.recompute_seconds:.1f} s",
        GOALS["full recompute"],
        _verdict(f.recompute_seconds <= 60),
    )
    table.add_row(f"on-demand p50, new company ({len(f.latencies_ms)} requests)", f"{p50:.1f} ms", "", "")
    table.add_row(
        f"on-demand p99, new company ({len(f.latencies_ms)} requests)",
        f"{p99:.1f} ms",
        GOALS["on-demand p99"],
        _verdict(p99 <= 50),
    )
    table.add_row(
        "    of which with_profiles p50 / p99",
        f"{f.percentile(0.5, f.profile_ms):.1f} / {f.percentile(0.99, f.profile_ms):.1f} ms",
        "",
        "",
    )
    table.add_row(
        "    of which rank (score + reasons) p50 / p99",
        f"{f.percentile(0.5, f.rank_ms):.1f} / {f.percentile(0.99, f.rank_ms):.1f} ms",
        "",
        "",
    )
    table.add_row(
        "    process CPU time p50 / p99",
        f"{f.percentile(0.5, f.cpu_ms):.1f} / {f.percentile(0.99, f.cpu_ms):.1f} ms",
        "",
        "",
    )
    table.add_row(
        "peak memory (VmHWM) up to the on-demand requests",
        f"{f.peak_mb:,.0f} MB",
        GOALS["peak memory"],
        _verdict(f.peak_mb <= 2048),
    )
    for stage, mb in f.peak_mb_after.items():
        table.add_row(f"    high-water mark after {stage}", f"{mb:,.0f} MB", "", "")
    table.add_row(
        f"TF-IDF product {f.companies:,} x {f.open_leads:,} open leads", f"{f.floor_seconds:.3f} s", "", ""
    )
    table.add_row(
        "full recompute / TF-IDF product (same shapes)",
        f"{f.recompute_seconds / f.floor_seconds:,.0f}x" if f.floor_seconds else "-",
        "",
        "",
    )
    table.add_row(
        f"TF-IDF product {f.companies:,} x {f.leads:,} all leads", f"{f.floor_all_seconds:.3f} s", "", ""
    )
    table.add_row(
        "full recompute / TF-IDF product (all leads)",
        f"{f.recompute_seconds / f.floor_all_seconds:,.0f}x" if f.floor_all_seconds else "-",
        "",
        "",
    )
    table.add_row(
        "load average (1 min) at start, after " + ", ".join(k for k in f.load_average if k != "start"),
        " / ".join(f"{v:.1f}" for v in f.load_average.values()),
        "",
        "",
    )
    table.caption = (
        "peak memory is this process's (the dataset is generated in a child process); "
        "on-demand = with_profiles + rank of the candidates among the open leads, "
        "as the recommendations service does; on a busy machine (load above the 2 cores) wall times wait "
        "for the CPU, the process CPU time does not"
    )
    return table


__all__ = ["RankingFigures", "bench_ranking", "figures_table"]
