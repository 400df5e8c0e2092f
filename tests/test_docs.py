"""The README documents every setting and every command that exists, and nothing that doesn't."""

import re
from pathlib import Path

import click

from partnermatch.cli import cli
from partnermatch.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_documented_and_every_documented_one_exists() -> None:
    real = {f"PARTNERMATCH_{name.upper()}" for name in Settings.model_fields}
    # PARTNERMATCH_TEST_* steer the tests, not the service.
    documented = {
        name
        for name in re.findall(r"`(PARTNERMATCH_[A-Z_]+)`", README)
        if not name.startswith("PARTNERMATCH_TEST_")
    }
    assert real == documented


def test_documented_commands_exist() -> None:
    for line in re.findall(r"\| `partnermatch ([a-z -]+)", README):
        words = line.split()
        command: click.Command = cli
        for word in words:
            if word.startswith("-"):
                break
            assert isinstance(command, click.Group), f"{line}: {command.name} has no subcommands"
            # get_command, not .commands: the ml commands come from entry points (see cli.PluginGroup).
            sub = command.get_command(click.Context(command), word)
            assert sub is not None, f"README documents `partnermatch {line}` but there is no `{word}`"
            command = sub
