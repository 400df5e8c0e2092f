"""`partnermatch`: the one command-line entry point. Each command opens its own session."""

import asyncio
import time
from collections.abc import Coroutine
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import click
from advanced_alchemy.cli import add_migration_commands
from granian.constants import Interfaces
from granian.server import Server
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from partnermatch import demo as demo_setup
from partnermatch.accounts.service import AccountService
from partnermatch.bench.auth import bench_auth, figures_table
from partnermatch.bench.imports import bench_import, results_table
from partnermatch.datasets.exporter import export_dataset
from partnermatch.datasets.format import DatasetInvalid
from partnermatch.datasets.importer import ImportReport, import_dataset
from partnermatch.db import alchemy_config, create_engine, ensure_migrated, session_scope
from partnermatch.enums import UserRole
from partnermatch.errors import DomainError
from partnermatch.mail import mailer_for
from partnermatch.recommendations.registry import ModelRegistry
from partnermatch.recommendations.training import (
    default_artifact,
    fit_and_save,
    model_params,
    register,
    store_recommendations,
    train_from_database,
)
from partnermatch.settings import Settings, get_settings
from partnermatch.synthetic.generator import GeneratorConfig, generate

T = TypeVar("T")
console = Console(stderr=True)
# Boosting iterations of the lead rankers; unset, the trainer's own default.
max_iter_option = click.option(
    "--max-iter", type=click.IntRange(min=1), default=None, help="Boosting iterations [default: the model's]"
)


class PluginGroup(click.Group):
    """A command group that also offers the commands other installed packages declare under an entry point
    group: ``ml`` adds its evaluation and benchmark commands this way, so that the service never imports
    the training code. They are loaded when they are run or listed."""

    def __init__(self, *args: Any, entry_point_group: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entry_point_group = entry_point_group

    def _plugins(self) -> dict[str, EntryPoint]:
        return {ep.name: ep for ep in entry_points(group=self.entry_point_group)}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in (plugins := self._plugins()):
            loaded = plugins[cmd_name].load()
            if isinstance(loaded, click.Command):
                command = loaded
        return command


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; a domain error becomes a one-line message and exit code 1."""
    try:
        return asyncio.run(coroutine)
    except DomainError as error:
        console.print(f"[red]error:[/] {escape(error.detail)}", highlight=False)
        raise SystemExit(1) from None


@click.group(
    cls=PluginGroup,
    entry_point_group="partnermatch.commands",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="partnermatch")
def cli() -> None:
    """PartnerMatch: Berlin companies meet opportunities in Berlin's partner cities.

    Configured by PARTNERMATCH_* environment variables (see the README).
    """


@cli.group()
@click.pass_context
def db(ctx: click.Context) -> None:
    """Database migrations (Alembic, via advanced-alchemy): upgrade, downgrade, history, ..."""
    settings = get_settings()
    ctx.obj = {"configs": [alchemy_config(settings, engine=create_engine(settings, pooled=False))]}


add_migration_commands(db)


async def _check_database(settings: Settings) -> None:
    engine = create_engine(settings, pooled=False)
    try:
        await ensure_migrated(settings, engine)
    finally:
        await engine.dispose()


def serve_app(settings: Settings, host: str, port: int, workers: int) -> None:
    run(_check_database(settings))
    console.print(
        f"PartnerMatch on http://{host}:{port} (API docs: http://{host}:{port}/schema)", highlight=False
    )
    Server(
        "partnermatch.app:create_app",
        address=host,
        port=port,
        workers=workers,
        interface=Interfaces.ASGI,
        factory=True,
        log_access=settings.debug,
    ).serve()


@cli.command()
@click.option("--host", default=None, help="Bind address [PARTNERMATCH_HOST, default 127.0.0.1]")
@click.option("--port", type=int, default=None, help="Port [PARTNERMATCH_PORT, default 8000]")
@click.option(
    "--workers", type=click.IntRange(min=1), default=None, help="Worker processes [PARTNERMATCH_WORKERS]"
)
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the API with granian (the database must be migrated)."""
    settings = get_settings()
    serve_app(settings, host or settings.host, port or settings.port, workers or settings.workers)


@cli.command()
@click.option("--host", default=None, help="Bind address [PARTNERMATCH_HOST]")
@click.option("--port", type=int, default=None, help="Port [PARTNERMATCH_PORT]")
@click.option("--no-serve", is_flag=True, help="Prepare the database and demo data, then exit")
def demo(host: str | None, port: int | None, no_serve: bool) -> None:
    """Migrate, load demo data once (generated, seed 7), and serve: the README's run command."""
    settings = get_settings()
    credentials = run(demo_setup.prepare(settings, console))
    # Plain lines, not a table: a narrow terminal must not cut a password short.
    console.print("Demo accounts (sign in at POST /api/v1/auth/login, or in /schema):", highlight=False)
    for c in credentials:
        company = f"  (member of {escape(c.company)})" if c.company else ""
        console.print(f"  {c.role:<7} {c.email}  password: {c.password}{company}", highlight=False)
    if not no_serve:
        serve_app(settings, host or settings.host, port or settings.port, settings.workers)


@cli.group()
def users() -> None:
    """Accounts: create staff so that a fresh installation can be administered."""


async def _create_staff(
    settings: Settings, email: str, password: str | None, admin: bool, token_name: str | None
) -> str | None:
    async with session_scope(settings) as session:
        accounts = AccountService(session, settings=settings, mailer=mailer_for(settings))
        role = UserRole.ADMIN if admin else UserRole.STAFF
        user = await accounts.create_user(email, password, role=role)
        if token_name is None:
            return None
        _token, secret = await accounts.create_api_token(user.id, token_name)
        return secret


@users.command("create-staff")
@click.argument("email")
@click.option("--admin", is_flag=True, help="An administrator (manages staff and tokens) instead of staff")
@click.option(
    "--token",
    "with_token",
    is_flag=True,
    help="No password: print an API token (read and write) once instead; it is stored only hashed",
)
@click.option("--token-name", default="created by partnermatch users create-staff", show_default=True)
def create_staff_command(email: str, admin: bool, with_token: bool, token_name: str) -> None:
    """Create a staff account: prompts for its password, or prints a one-time API token (--token)."""
    password = None
    if not with_token:
        password = click.prompt("Password (12 characters or more)", hide_input=True, confirmation_prompt=True)
    secret = run(_create_staff(get_settings(), email, password, admin, token_name if with_token else None))
    console.print(f"created {'admin' if admin else 'staff'} account {escape(email)}", highlight=False)
    if secret is not None:
        console.print("API token (shown once; send it as `Authorization: Bearer <token>`):", highlight=False)
        click.echo(secret)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
    )


async def _import_dataset(settings: Settings, directory: Path) -> ImportReport:
    try:
        async with session_scope(settings) as session:
            with _progress() as progress:
                return await import_dataset(session, directory, progress)
    except DatasetInvalid as invalid:
        # Plain lines, neither wrapped nor read as markup: the messages quote the dataset's own text.
        for line in invalid.errors:
            click.echo(line, err=True)
        more = " (stopped there)" if invalid.truncated else ""
        raise DomainError(
            f"{escape(str(directory))} is not a valid dataset: {len(invalid.errors)} errors{more}; nothing was imported"
        ) from None


@cli.command("import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def import_command(directory: Path) -> None:
    """Load a dataset folder (shared/dataset-format.md): checked first, then written all or nothing.

    Ids in the files are external ids: importing the same folder again changes nothing, changed rows are updated.
    """
    started = time.perf_counter()
    report = run(_import_dataset(get_settings(), directory))
    table = Table(title=f"imported {directory} in {time.perf_counter() - started:.1f} s")
    for column in ("file", "rows", "inserted", "updated", "unchanged"):
        table.add_column(column, justify="left" if column == "file" else "right")
    for name, counts in report.files.items():
        table.add_row(
            name, *(f"{n:,}" for n in (counts.rows, counts.inserted, counts.updated, counts.unchanged))
        )
    Console().print(table)


async def _export_dataset(settings: Settings, directory: Path) -> dict[str, int]:
    async with session_scope(settings) as session:
        with _progress() as progress:
            return await export_dataset(session, directory, progress)


@cli.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export_command(directory: Path) -> None:
    """Write the whole database as a dataset folder (created if needed; its dataset files are replaced)."""
    counts = run(_export_dataset(get_settings(), directory))
    click.echo(f"exported to {directory}: " + ", ".join(f"{name} {n:,}" for name, n in counts.items()))


@cli.command("generate")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--companies", type=click.IntRange(min=1), default=2_000, show_default=True)
@click.option("--leads", type=click.IntRange(min=1), default=1_000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--weeks", type=click.IntRange(min=4), default=52, show_default=True, help="Simulated history")
@click.option(
    "--activity",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="Scales how often companies look at their recommendations and find leads on their own",
)
def generate_command(
    directory: Path, companies: int, leads: int, seed: int, weeks: int, activity: float
) -> None:
    """Write a realistic synthetic dataset (same options and seed, same bytes): demo data, tests, benchmarks."""
    config = GeneratorConfig(companies=companies, leads=leads, seed=seed, weeks=weeks, activity=activity)
    with _progress() as progress:
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        counts = generate(directory, config, report)
    click.echo(f"wrote {directory}: " + ", ".join(f"{name} {n:,}" for name, n in counts.items()))


@cli.group(cls=PluginGroup, entry_point_group="partnermatch.bench_commands")
def bench() -> None:
    """Performance measurements: they print figures, they are not tests."""


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
@click.option(
    "--requests", type=click.IntRange(min=1), default=3_000, show_default=True, help="Per scenario and round"
)
@click.option("--concurrency", type=click.IntRange(min=1), default=16, show_default=True)
@click.option(
    "--seconds",
    type=click.FloatRange(min=1),
    default=15.0,
    show_default=True,
    help="Cap per scenario and round",
)
@click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Server workers")
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


@cli.command("train")
@click.option(
    "--data",
    "data",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Train on a dataset folder instead of the database (not registered unless --register)",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Artifact path (.joblib; metadata goes next to it as .json) [default: VAR_DIR/models/ranker-VERSION.joblib]",
)
@max_iter_option
@click.option("--register", "and_register", is_flag=True, help="With --data: register and activate the model")
def train_command(data: Path | None, out: Path | None, max_iter: int | None, and_register: bool) -> None:
    """Fit the lead and mission ranker (on the database, or a dataset folder) and write a versioned artifact.

    Trained from the database, the model is registered and becomes the active one.
    """
    settings = get_settings()
    out = out or default_artifact(settings)
    params = model_params(max_iter)
    if data is None:
        trained = run(train_from_database(settings, out, params))
        and_register = True
    else:
        trained = run(asyncio.to_thread(fit_and_save, data, out, params))
    metadata = trained.metadata
    holdout = ", ".join(f"{k} {v:.4g}" for k, v in metadata["holdout_metrics"].items())
    click.echo(
        f"wrote {out} (sha256 {metadata['sha256'][:12]}, trained in {trained.seconds:.1f} s; {holdout})"
    )
    if and_register:
        run(register(settings, trained))
        click.echo(f"registered and activated model {metadata['version']}")
        _store_recommendations(settings)


@cli.group()
def model() -> None:
    """The registry of trained ranking models: exactly one is active and serves recommendations."""


async def _models(settings: Settings, action: str, version: str | None = None) -> list[dict[str, Any]]:
    async with session_scope(settings) as session:
        registry = ModelRegistry(session)
        if action == "activate" and version is not None:
            await registry.activate(version)
        elif action == "rollback":
            await registry.rollback()
        return [
            {
                "version": r.version,
                "active": r.is_active,
                "created_at": r.created_at.isoformat(timespec="seconds"),
                "sha256": r.sha256[:12],
                "auc": r.metrics.get("holdout_auc"),
                "path": r.artifact_path,
            }
            for r in await registry.list()
        ]


def _store_recommendations(
    settings: Settings, *, only_if_missing: bool = False, company_ids: list[UUID] | None = None
) -> None:
    """The stored recommendations of the active model version (see recommendations/batch.py)."""
    stored = run(store_recommendations(settings, only_if_missing=only_if_missing, company_ids=company_ids))
    if stored is not None:
        version, timings = stored
        console.print(timings.describe(version.version), highlight=False)
    elif not only_if_missing:
        console.print("no active model: nothing to store (run `partnermatch train`)", highlight=False)


@cli.group()
def recommendations() -> None:
    """Stored recommendations: each approved company's top leads, computed in batch per model version."""


@recommendations.command("refresh")
@click.option("--company", default=None, help="Only this company's rows (its id)")
def recommendations_refresh_command(company: str | None) -> None:
    """Recompute the active model's stored recommendations (all approved companies, or one)."""
    company_ids = None
    if company is not None:
        try:
            company_ids = [UUID(company)]
        except ValueError:
            raise click.BadParameter(
                f"{company!r} is not a company id (a UUID)", param_hint="--company"
            ) from None
    _store_recommendations(get_settings(), company_ids=company_ids)


def _print_models(rows: list[dict[str, Any]]) -> None:
    if not rows:
        click.echo("no models registered: run `partnermatch train`")
        return
    table = Table(title="ranking models (newest first)")
    for column in ("version", "active", "created_at", "sha256", "holdout AUC", "artifact"):
        table.add_column(column)
    for r in rows:
        auc = f"{r['auc']:.3f}" if isinstance(r["auc"], float) else "-"
        table.add_row(
            r["version"], "yes" if r["active"] else "", r["created_at"], r["sha256"], auc, r["path"]
        )
    Console().print(table)


@model.command("list")
def model_list_command() -> None:
    """Registered models, newest first."""
    _print_models(run(_models(get_settings(), "list")))


@model.command("activate")
@click.argument("version")
def model_activate_command(version: str) -> None:
    """Serve recommendations from VERSION (its recommendations are stored first if it has none)."""
    settings = get_settings()
    _print_models(run(_models(settings, "activate", version)))
    _store_recommendations(settings, only_if_missing=True)


@model.command("rollback")
def model_rollback_command() -> None:
    """Activate the newest version older than the active one (storing its recommendations if it has none)."""
    settings = get_settings()
    _print_models(run(_models(settings, "rollback")))
    _store_recommendations(settings, only_if_missing=True)


def main() -> None:
    cli(prog_name="partnermatch")
