"""`partnermatch bench portal` on a tiny scale: the machinery measures both scenarios, no timing asserted.

The demo's own data would take half a minute to prepare; the var dir gets the session's tiny trial
dataset and model instead, and `demo.prepare` (which the benchmark runs) stores the recommendations
and creates the demo accounts on it, as it would on the demo data."""

import io
from pathlib import Path

from rich.console import Console

from partnermatch.bench.portal import bench_portal, demo_settings, portal_table, summary
from partnermatch.datasets.importer import import_dataset
from partnermatch.db import migrate, session_scope
from partnermatch.recommendations.registry import ModelRegistry
from tests.recommendations.conftest import Trial, trial

__all__ = ["trial"]

REQUESTS = 12


async def test_the_portal_benchmark_measures_the_page_and_the_json_endpoint(
    trial: Trial, tmp_path: Path
) -> None:
    settings = demo_settings(tmp_path)
    await migrate(settings)
    async with session_scope(settings) as session:
        await import_dataset(session, trial.dataset)
        await ModelRegistry(session).register(trial.trained.metadata, str(trial.trained.path))
    output = io.StringIO()
    result = await bench_portal(
        var_dir=tmp_path,
        requests=REQUESTS,
        concurrency=2,
        seconds=30,
        rounds=1,
        workers=1,
        console=Console(file=output, width=200),
    )
    assert "signed in through the portal form as member@demo.partnermatch.invalid" in output.getvalue()
    # Checked before and after: both scenarios show the stored list.
    assert len(result.checks) == 2
    assert all("JSON source 'stored'" in check and '<li class="item">' in check for check in result.checks)
    for figures in (result.page, result.api, result.health):
        assert figures.requests == REQUESTS == len(figures.latencies)
        assert figures.errors == 0
        assert figures.seconds > 0
        assert figures.per_second > 0
        assert 0 < figures.percentile(0.5) <= figures.percentile(0.99)
        # Linux: /proc gives the server's CPU time; this process's is always known.
        assert figures.server_cpu is not None
        assert figures.client_cpu is not None
    assert result.page.cpu_per_request is not None
    assert result.page.cpu_per_request > 0
    assert result.cpu_ratio is not None
    assert result.p50_ratio is not None
    # The CPU goal is checked at any scale; the p99 goal only at 16 clients.
    assert [met is not None for _goal, met in result.goals()] == [True, False, False]
    lines = summary(result)
    assert len(lines) == 5
    assert lines[3].startswith("queueing: 2 clients")
    assert lines[-1].startswith("load client: page ")
    assert "on /health it reached" in lines[-1]
    table = Console(file=io.StringIO(), width=200, record=True)
    table.print(portal_table(result, "tiny"))
    text = table.export_text()
    assert "page ÷ JSON" in text
    assert "/health" in text
