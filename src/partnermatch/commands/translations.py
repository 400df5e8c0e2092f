"""`partnermatch translations update`: the portal's catalogs in step with the code."""

import click

from partnermatch.cli import console
from partnermatch.portal.catalogs import update


@click.group()
def translations() -> None:
    """The portal's German and English message catalogs (src/partnermatch/portal/translations)."""


@translations.command("update")
def update_command() -> None:
    """Add the messages the code has and the catalogs lack (untranslated), drop those it no longer has."""
    for language, messages in update().items():
        if messages:
            console.print(f"{language}: {len(messages)} messages need a translation:", highlight=False)
            for message in messages:
                console.print(f"  {message}", highlight=False)
        else:
            console.print(f"{language}: every message is translated", highlight=False)
