"""`partnermatch users`: accounts from the command line."""

import click
from rich.markup import escape

from partnermatch.accounts.service import AccountService
from partnermatch.cli import console, run
from partnermatch.db import session_scope
from partnermatch.enums import UserRole
from partnermatch.settings import Settings, get_settings


@click.group()
def users() -> None:
    """Accounts: create staff so that a fresh installation can be administered."""


async def _create_staff(
    settings: Settings, email: str, password: str | None, admin: bool, token_name: str | None
) -> str | None:
    async with session_scope(settings) as session:
        accounts = AccountService(session, settings=settings)
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
