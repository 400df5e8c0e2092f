"""`partnermatch`: the one command-line entry point. Each command opens its own session.

This module holds the group, `db` and `serve`; every other command lives in a module of
``partnermatch.commands`` (or of ``ml``) and is found through the ``partnermatch.commands`` entry points
(``pyproject.toml``), loaded only when it runs: `partnermatch db upgrade` does not load the ranking model's
libraries or the web app."""

import asyncio
from collections.abc import Coroutine
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

import click
from advanced_alchemy.cli import add_migration_commands
from granian.constants import Interfaces
from granian.server import Server
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from partnermatch.db import alchemy_config, create_engine, ensure_migrated
from partnermatch.errors import DomainError
from partnermatch.settings import Settings, get_settings

T = TypeVar("T")
console = Console(stderr=True)
# Boosting iterations of the lead rankers; unset, the trainer's own default.
max_iter_option = click.option(
    "--max-iter", type=click.IntRange(min=1), default=None, help="Boosting iterations [default: the model's]"
)


def model_params(max_iter: int | None) -> dict[str, Any]:
    """Trainer parameters from ``--max-iter``: unset, the trainer's own defaults."""
    return {} if max_iter is None else {"max_iter": max_iter}


class PluginGroup(click.Group):
    """A command group that also offers the commands declared under an entry point group, loaded when they
    are run or listed: the service's own heavier commands, and ``ml``'s evaluation and benchmark commands,
    which the service must never import."""

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
        f"PartnerMatch on http://{host}:{port} (the portal; API docs: http://{host}:{port}/schema)",
        highlight=False,
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


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def main() -> None:
    cli(prog_name="partnermatch")
