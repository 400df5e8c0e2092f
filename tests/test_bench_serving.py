"""`partnermatch bench serving`'s own arithmetic: what it reads of wrk's report, and how it splits a
profile into where the time went (the benchmark itself prints figures; it is not run here)."""

import cProfile
import json
import pstats

import pytest

from partnermatch.bench.throughput import OTHER, category, parse_wrk, split_by_category

# What `wrk -t1 -c4 -d1s --latency` printed against a server answering 404.
WRK_REPORT = """Running 1s test @ http://127.0.0.1:8722/nonexistent
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.79ms    2.27ms  17.19ms   75.99%
    Req/Sec     1.07k   131.77     1.34k    70.00%
  Latency Distribution
     50%    3.36ms
     75%    4.70ms
     90%    6.59ms
     99%   11.49ms
  1071 requests in 1.00s, 543.87KB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 1071
Requests/sec:   1068.39
Transfer/sec:    542.54KB
"""


def test_wrk_figures_are_read_with_their_units_and_every_failure_counted() -> None:
    figures = parse_wrk(WRK_REPORT, seconds=5.0)
    assert figures.requests == 1071
    assert figures.seconds == pytest.approx(1.0)
    assert figures.per_second == pytest.approx(1068.39)
    assert figures.p50_ms == pytest.approx(3.36)
    assert figures.p99_ms == pytest.approx(11.49)
    # 1,071 non-2xx answers and 5 socket errors.
    assert figures.failures == 1076


def test_latencies_in_microseconds_and_seconds_become_milliseconds() -> None:
    report = WRK_REPORT.replace("3.36ms", "812.00us").replace("11.49ms", "1.20s")
    figures = parse_wrk(report, seconds=5.0)
    assert figures.p50_ms == pytest.approx(0.812)
    assert figures.p99_ms == pytest.approx(1200.0)


def test_functions_are_placed_by_the_package_that_spends_the_time() -> None:
    assert category("/venv/site-packages/sqlalchemy/engine/base.py") == "database"
    assert category("/venv/site-packages/jinja2/runtime.py") == "templates and translation"
    assert category("/src/partnermatch/portal/templates/recommendations.html") == "templates and translation"
    assert category("/src/partnermatch/accounts/auth.py") == "authentication"
    assert category("/venv/site-packages/litestar/routes/http.py") == "framework and middleware"
    assert category("/src/partnermatch/recommendations/service.py") == "handlers and services"
    assert category("/venv/site-packages/httpx/_client.py") == "load client"
    assert category("/usr/lib/python3.11/asyncio/base_events.py") == OTHER


def test_time_in_a_builtin_goes_to_its_callers_in_their_shares() -> None:
    template = ("/src/partnermatch/portal/i18n.py", 10, "euros")
    handler = ("/src/partnermatch/recommendations/service.py", 20, "recommend")
    builtin = ("~", 0, "<method 'join' of 'str' objects>")
    # pstats' layout: (calls, primitive calls, own time, cumulative time, callers); a caller's entry holds
    # the same four figures for its calls of this function.
    stats = {
        template: (1, 1, 1.0, 5.0, {}),
        handler: (1, 1, 2.0, 6.0, {}),
        builtin: (4, 4, 4.0, 4.0, {template: (3, 3, 3.0, 3.0), handler: (1, 1, 1.0, 1.0)}),
    }
    split = split_by_category(stats)
    assert split["templates and translation"] == pytest.approx(1.0 + 3.0)
    assert split["handlers and services"] == pytest.approx(2.0 + 1.0)
    assert sum(split.values()) == pytest.approx(7.0)


def test_a_real_profile_is_split_without_losing_time() -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(200):
        json.loads(json.dumps({"leads": list(range(100))}))
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    split = split_by_category(stats)
    own = sum(entry[2] for entry in stats.values())
    assert sum(split.values()) == pytest.approx(own, rel=1e-6)
    assert split.get("serialisation", 0.0) > 0
