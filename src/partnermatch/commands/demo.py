"""`partnermatch demo`: the README's run command."""

import click
from rich.markup import escape

from partnermatch import demo as demo_setup
from partnermatch.cli import console, run, serve_app
from partnermatch.settings import get_settings


@click.command()
@click.option("--host", default=None, help="Bind address [PARTNERMATCH_HOST]")
@click.option("--port", type=int, default=None, help="Port [PARTNERMATCH_PORT]")
@click.option("--no-serve", is_flag=True, help="Prepare the database and demo data, then exit")
def demo(host: str | None, port: int | None, no_serve: bool) -> None:
    """Migrate, load demo data once (generated, seed 7), and serve: the README's run command."""
    settings = get_settings()
    credentials = run(demo_setup.prepare(settings, console))
    address = f"http://{host or settings.host}:{port or settings.port}"
    # Plain lines, not a table: a narrow terminal must not cut a password short.
    console.print(
        f"Demo accounts: the member signs in to the portal at {address}/login (or register a company at "
        f"{address}/register); staff approve registrations with `partnermatch companies list` and "
        f"`partnermatch companies approve ID --as STAFF_EMAIL`, or use the API ({address}/schema):",
        highlight=False,
    )
    for c in credentials:
        company = f"  (member of {escape(c.company)})" if c.company else ""
        console.print(f"  {c.role:<7} {c.email}  password: {c.password}{company}", highlight=False)
    if not no_serve:
        serve_app(settings, host or settings.host, port or settings.port, settings.workers)
