"""`partnermatch bench`: performance measurements of the service (and, through its entry points, of the model)."""

import contextlib
import tempfile
from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Console

from partnermatch.bench.auth import bench_auth, figures_table
from partnermatch.bench.digests import bench_digests, digest_table
from partnermatch.bench.digests import summary as digest_summary
from partnermatch.bench.imports import bench_import, results_table
from partnermatch.bench.portal import bench_portal, portal_table, summary
from partnermatch.bench.throughput import (
    CONCURRENCY,
    POSTGRES_DATABASE,
    bench_serving,
    default_data,
    goals,
    profile_table,
    runs_table,
)
from partnermatch.cli import PluginGroup, console, run


@click.group(cls=PluginGroup, entry_point_group="partnermatch.bench_commands")
def bench() -> None:
    """Performance measurements: they print figures, they are not tests."""


def load_options(requests: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The load every server benchmark takes: requests, concurrency, seconds, rounds, workers."""
    options = [
        click.option(
            "--requests",
            type=click.IntRange(min=1),
            default=requests,
            show_default=True,
            help="Per scenario and round",
        ),
        click.option("--concurrency", type=click.IntRange(min=1), default=16, show_default=True),
        click.option(
            "--seconds",
            type=click.FloatRange(min=1),
            default=15.0,
            show_default=True,
            help="Cap per scenario and round",
        ),
        click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True),
        click.option(
            "--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Server workers"
        ),
    ]

    def apply(command: Callable[..., None]) -> Callable[..., None]:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


def wide_console() -> Console:
    """The figures' console: into a file or pipe, wide enough for one line per table row."""
    out = Console()
    return out if out.is_terminal else Console(width=150)


@bench.command("import")
@click.option("--companies", type=click.IntRange(min=1), default=20_000, show_default=True)
@click.option("--leads", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option(
    "--interactions",
    type=click.IntRange(min=0),
    default=500_000,
    show_default=True,
    help="Approximate: sets the generator's activity",
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--postgres-url",
    default="postgresql://postgres@127.0.0.1:5432/postgres",
    show_default=True,
    help="Server where a uniquely named database is created and dropped",
)
@click.option("--no-postgres", is_flag=True, help="SQLite only")
@click.option("--no-writer", is_flag=True, help="Without the writer changing a profile once a second")
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the generated dataset here and keep it",
)
def bench_import_command(
    companies: int,
    leads: int,
    interactions: int,
    seed: int,
    postgres_url: str,
    no_postgres: bool,
    keep: Path | None,
) -> None:
    """Generate a synthetic dataset and time its import into fresh SQLite and PostgreSQL databases."""
    results = run(
        bench_import(
            companies=companies,
            leads=leads,
            interactions=interactions,
            seed=seed,
            postgres_url=None if no_postgres else postgres_url,
            console=console,
            keep=keep,
        )
    )
    Console().print(results_table(results))


@bench.command("auth")
@load_options(requests=3_000)
@click.option(
    "--postgres-url",
    default=None,
    help="Server where a uniquely named database is created and dropped [default: a fresh SQLite file]",
)
def bench_auth_command(
    requests: int, concurrency: int, seconds: float, rounds: int, workers: int, postgres_url: str | None
) -> None:
    """Start the server on loopback and compare public and authenticated reads (cookie, bearer token)."""
    results = run(
        bench_auth(
            requests=requests,
            concurrency=concurrency,
            seconds=seconds,
            rounds=rounds,
            workers=workers,
            postgres_url=postgres_url,
            report=lambda line: console.print(line, highlight=False),
        )
    )
    backend = "PostgreSQL" if postgres_url else "SQLite"
    Console().print(figures_table(results, f"authentication cost, {backend}, {workers} worker(s)"))


@bench.command("portal")
@load_options(requests=2_000)
@click.option(
    "--var-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Prepare the demo here, or reuse it if it is there [default: a fresh temporary folder]",
)
def bench_portal_command(
    requests: int, concurrency: int, seconds: float, rounds: int, workers: int, var_dir: Path | None
) -> None:
    """Start the server on loopback on the demo data and compare the signed-in recommendations page
    with the JSON recommendations endpoint for the same company (SQLite)."""
    result = run(
        bench_portal(
            var_dir=var_dir,
            requests=requests,
            concurrency=concurrency,
            seconds=seconds,
            rounds=rounds,
            workers=workers,
            console=console,
        )
    )
    out = wide_console()
    out.print(portal_table(result, f"recommendations: page and JSON, SQLite, {workers} worker(s)"))
    for line in [*result.checks, result.load_before, result.load_after, *summary(result)]:
        out.print(line, highlight=False)


@bench.command("digests")
@click.option("--companies", type=click.IntRange(min=1), default=20_000, show_default=True)
@click.option("--leads", type=click.IntRange(min=1), default=5_000, show_default=True)
@click.option(
    "--per-company",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Stored recommendations per company",
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--var-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Prepare the database here, or reuse it if it is there [default: a fresh temporary folder]",
)
def bench_digests_command(
    companies: int, leads: int, per_company: int, seed: int, var_dir: Path | None
) -> None:
    """One digest run for generated companies with stored recommendations, to a mail server on loopback,
    beside the floor: the same number of pre-rendered messages to that server alone (SQLite)."""
    with contextlib.ExitStack() as stack:
        if var_dir is None:
            var_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="partnermatch-digests-")))
        var_dir.mkdir(parents=True, exist_ok=True)
        result = run(
            bench_digests(
                var_dir,
                companies=companies,
                leads=leads,
                per_company=per_company,
                seed=seed,
                console=console,
                report=lambda line: console.print(line, highlight=False),
            )
        )
    out = wide_console()
    out.print(digest_table(result))
    for line in [*result.checks, result.load_before, result.load_after, *digest_summary(result)]:
        out.print(line, highlight=False)


@bench.command("serving")
@click.option("--companies", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--leads", type=click.IntRange(min=1), default=5_000, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--seconds",
    type=click.FloatRange(min=1),
    default=10.0,
    show_default=True,
    help="Per route and concurrency",
)
@click.option(
    "--concurrency",
    "concurrencies",
    type=click.IntRange(min=1),
    multiple=True,
    default=CONCURRENCY,
    show_default=True,
    help="Concurrent connections of wrk (repeat the option for several)",
)
@click.option(
    "--profile-requests",
    type=click.IntRange(min=10),
    default=300,
    show_default=True,
    help="Requests per route of the in-process profile",
)
@click.option(
    "--postgres-url",
    default="postgresql://postgres@127.0.0.1:5432/postgres",
    show_default=True,
    help=f"Server where the database {POSTGRES_DATABASE} is prepared once and reused (unreachable: SQLite only)",
)
@click.option("--no-postgres", is_flag=True, help="SQLite only")
@click.option("--no-writer", is_flag=True, help="Without the writer changing a profile once a second")
@click.option(
    "--var-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var/bench-serving"),
    show_default=True,
    help="Prepare the SQLite database, the dataset and the models here, or reuse them",
)
def bench_serving_command(
    companies: int,
    leads: int,
    seed: int,
    seconds: float,
    concurrencies: tuple[int, ...],
    profile_requests: int,
    postgres_url: str,
    no_postgres: bool,
    no_writer: bool,
    var_dir: Path,
) -> None:
    """Start the server on loopback on a generated dataset with stored recommendations and load its hot
    reads with wrk beside plain /health, on SQLite and PostgreSQL, with a writer changing a profile once
    a second; then profile each route in-process and split its CPU time by where it goes."""
    backends = run(
        bench_serving(
            var_dir=var_dir,
            data=default_data(companies, leads, seed),
            postgres_url=None if no_postgres else postgres_url,
            seconds=seconds,
            concurrencies=concurrencies,
            profile_requests=profile_requests,
            console=console,
            writer=not no_writer,
        )
    )
    out = wide_console()
    for backend in backends:
        out.print(runs_table(backend))
        out.print(profile_table(backend))
    for line in goals(backends):
        out.print(line, highlight=False)
