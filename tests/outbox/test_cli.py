"""`partnermatch mail status|deliver` on a SQLite file, as an operator runs them after an outage."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from partnermatch.cli import cli
from partnermatch.db import migrate, session_scope
from partnermatch.enums import MailKind
from partnermatch.outbox.models import UndeliverableAddress
from partnermatch.outbox.service import Outbox
from partnermatch.settings import Settings, get_settings


def test_status_lists_what_waits_and_deliver_sends_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'mail.db'}"
    settings = Settings(database_url=url, var_dir=tmp_path)

    async def prepare() -> None:
        await migrate(settings)
        # Committed outside a request, so no job sent them: what a worker killed after the commit leaves.
        async with session_scope(settings) as session:
            outbox = Outbox(session)
            for to in ("anna@example.org", "bert@example.org", "gone@example.org"):
                outbox.add(MailKind.INVITATION, to, f"Hi {to}", "Hallo\n")
            session.add(
                UndeliverableAddress(address="gone@example.org", since=datetime.now(UTC), reason="550")
            )

    asyncio.run(prepare())
    monkeypatch.setenv("PARTNERMATCH_DATABASE_URL", url)
    monkeypatch.setenv("PARTNERMATCH_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        before = runner.invoke(cli, ["mail", "status"])
        assert before.exit_code == 0, before.output
        assert "pending 3, sending 0, sent 0, failed 0" in before.output
        delivered = runner.invoke(cli, ["mail", "deliver"])
        assert delivered.exit_code == 0, delivered.output
        assert "sent 2, to be retried 0, failed 1" in delivered.output
        assert runner.invoke(cli, ["mail", "deliver"]).output.strip() == "sent 0, to be retried 0, failed 0"
        after = runner.invoke(cli, ["mail", "status"])
        assert "pending 0, sending 0, sent 2, failed 1" in after.output
        assert "gone@example.org" in after.output
        assert "undeliverable" in after.output
    finally:
        get_settings.cache_clear()
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 2  # the file backend's copies
