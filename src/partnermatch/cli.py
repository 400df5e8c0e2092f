"""`partnermatch`: the one command-line entry point. Each command opens its own session."""

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

import click
from advanced_alchemy.cli import add_migration_commands
from rich.console import Console

from partnermatch.db import alchemy_config, create_engine, ensure_migrated, migrate
from partnermatch.errors import DomainError
from partnermatch.settings import Settings, get_settings

T = TypeVar("T")
console = Console(stderr=True)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; a domain error becomes a one-line message and exit code 1."""
    try:
        return asyncio.run(coroutine)
    except DomainError as error:
        console.print(f"[red]error:[/] {error.detail}", highlight=False)
        raise SystemExit(1) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    from granian.constants import Interfaces
    from granian.server import Server

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
    from partnermatch.datasets.demo import prepare_demo

    settings = get_settings()
    os.makedirs(settings.var_dir, exist_ok=True)
    run(migrate(settings))
    run(prepare_demo(settings, console))
    if not no_serve:
        serve_app(settings, host or settings.host, port or settings.port, settings.workers)


def main() -> None:
    cli(prog_name="partnermatch")
