import asyncio
import io
import json
from pathlib import Path
from uuid import UUID

import msgspec
import pytest
from click.testing import CliRunner
from rich.console import Console
from sqlalchemy import func, select

from partnermatch.accounts.models import User
from partnermatch.accounts.schemas import Registration
from partnermatch.accounts.service import AccountService
from partnermatch.audit.models import AuditEvent
from partnermatch.cli import cli
from partnermatch.companies.models import Company
from partnermatch.datasets.importer import import_dataset
from partnermatch.db import migrate, session_scope
from partnermatch.demo import ensure_demo_model
from partnermatch.recommendations.models import StoredRecommendation
from partnermatch.recommendations.registry import ModelRegistry
from partnermatch.settings import Settings, get_settings
from tests.accounts.test_auth import mails_to
from tests.recommendations.conftest import Trial


def test_train_registers_and_model_commands_switch_versions(
    trial: Trial, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    asyncio.run(migrate(Settings(database_url=url, var_dir=tmp_path)))
    monkeypatch.setenv("PARTNERMATCH_DATABASE_URL", url)
    monkeypatch.setenv("PARTNERMATCH_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        assert "no models registered" in runner.invoke(cli, ["model", "list"]).output
        assert runner.invoke(cli, ["import", str(trial.dataset)]).exit_code == 0
        first = runner.invoke(cli, ["train", "--max-iter", "10"])
        assert first.exit_code == 0, first.output
        assert "registered and activated" in first.output
        assert "recommendations of model" in first.output  # the batch ran after training
        bad = runner.invoke(cli, ["recommendations", "refresh", "--company", "acme"])
        assert bad.exit_code == 2
        assert "is not a company id" in bad.output
        refreshed = runner.invoke(cli, ["recommendations", "refresh"])
        assert refreshed.exit_code == 0, refreshed.output
        assert "stored" in refreshed.output
        artifacts = sorted((tmp_path / "models").glob("*.joblib"))
        assert len(artifacts) == 1
        offline = runner.invoke(cli, ["train", "--data", str(trial.dataset), "--max-iter", "10"])
        assert offline.exit_code == 0, offline.output
        assert "registered" not in offline.output
        second = runner.invoke(cli, ["train", "--data", str(trial.dataset), "--max-iter", "10", "--register"])
        assert second.exit_code == 0, second.output
        listed = runner.invoke(cli, ["model", "list"])
        assert listed.exit_code == 0, listed.output
        assert listed.output.count("yes") == 1
        rolled = runner.invoke(cli, ["model", "rollback"])
        assert rolled.exit_code == 0, rolled.output
        # The older version kept its rows: nothing to compute on the way back.
        assert "recommendations of model" not in rolled.output
        again = runner.invoke(cli, ["model", "rollback"])
        assert again.exit_code == 1
        assert "no older model version" in again.stderr
        unknown = runner.invoke(cli, ["model", "activate", "nope"])
        assert unknown.exit_code == 1
    finally:
        get_settings.cache_clear()


def test_the_demo_retrains_a_model_it_cannot_load_and_says_why(trial: Trial, tmp_path: Path) -> None:
    """An artifact of an older format (or an older scikit-learn) is refused; the demo trains a new one."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    settings = Settings(database_url=url, var_dir=tmp_path)
    asyncio.run(migrate(settings))

    async def prepare() -> str:
        async with session_scope(settings) as session:
            await import_dataset(session, trial.dataset)
            registered = await ModelRegistry(session).register(
                trial.trained.metadata, str(trial.trained.path)
            )
            return registered.version

    old = asyncio.run(prepare())
    metadata_file = trial.trained.path.with_suffix(".json")
    original = metadata_file.read_text()
    console = Console(file=io.StringIO(), width=200)
    try:
        metadata_file.write_text(json.dumps({**json.loads(original), "format": 1}))
        asyncio.run(ensure_demo_model(settings, console))
    finally:
        metadata_file.write_text(original)
    said = console.file.getvalue()  # type: ignore[attr-defined]
    assert "format 1" in said
    assert "training a new demo model" in said

    async def active() -> str | None:
        async with session_scope(settings) as session:
            row = await ModelRegistry(session).active()
            return None if row is None else row.version

    assert asyncio.run(active()) not in (None, old)


def test_staff_approve_and_reject_registrations_from_the_console(
    trial: Trial, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`partnermatch companies`: the same status change as the API's, audited under the staff member,
    followed by the same jobs (recommendations computed, the rejection mailed)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'console.db'}"
    settings = Settings(database_url=url, var_dir=tmp_path)
    asyncio.run(migrate(settings))
    founders = {
        "Spreewerk Robotik GmbH": "founder@spreewerk.example",
        "Nirgendwo AG": "info@nirgendwo.example",
    }

    async def prepare() -> dict[str, UUID]:
        async with session_scope(settings) as session:
            await import_dataset(session, trial.dataset)
            await ModelRegistry(session).register(trial.trained.metadata, str(trial.trained.path))
            accounts = AccountService(session, settings=settings)
            for name, email in founders.items():
                registration = {
                    "email": email,
                    "password": "a long enough passphrase 1",
                    "company": {
                        "name": name,
                        "sectors": ["62.01"],
                        "employees": 12,
                        "founded": 2015,
                        "export_experience": "some",
                        "target_cities": ["warsaw"],
                    },
                }
                await accounts.register(msgspec.convert(registration, Registration))
            found = await session.scalars(select(Company).where(Company.name.in_(founders)))
            return {company.name: company.id for company in found}

    ids = asyncio.run(prepare())
    monkeypatch.setenv("PARTNERMATCH_DATABASE_URL", url)
    monkeypatch.setenv("PARTNERMATCH_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        listed = runner.invoke(cli, ["companies", "list"])
        assert listed.exit_code == 0, listed.output
        assert all(f"{ids[name]}" in listed.output for name in founders)
        assert "2 pending companies" in listed.output
        approving = ["companies", "approve", str(ids["Spreewerk Robotik GmbH"])]
        # Only a staff account may decide, and the decision is recorded under it.
        refused = runner.invoke(cli, [*approving, "--as", founders["Nirgendwo AG"]])
        assert refused.exit_code == 1
        assert "no active staff account" in refused.output
        assert runner.invoke(cli, ["users", "create-staff", "ops@example.org", "--token"]).exit_code == 0
        approved = runner.invoke(cli, [*approving, "--as", "Ops@Example.org"])
        assert approved.exit_code == 0, approved.output
        assert "recommendations are ready" in approved.output
        reason = "Der Firmensitz liegt nicht in Berlin."
        rejecting = ["companies", "reject", str(ids["Nirgendwo AG"]), "--as", "ops@example.org"]
        assert runner.invoke(cli, rejecting).exit_code == 2  # a rejection needs its reason
        rejected = runner.invoke(cli, [*rejecting, "--reason", reason])
        assert rejected.exit_code == 0, rejected.output
        assert "0 pending companies" in runner.invoke(cli, ["companies", "list"]).output
    finally:
        get_settings.cache_clear()

    async def outcome() -> tuple[int, list[AuditEvent]]:
        async with session_scope(settings) as session:
            stored = await session.scalar(
                select(func.count())
                .select_from(StoredRecommendation)
                .where(StoredRecommendation.company_id == ids["Spreewerk Robotik GmbH"])
            )
            staff = await session.scalar(select(User.id).where(User.email == "ops@example.org"))
            audited = await session.scalars(
                select(AuditEvent).where(AuditEvent.entity == "companies", AuditEvent.actor_user_id == staff)
            )
            return stored or 0, list(audited)

    stored, audited = asyncio.run(outcome())
    assert stored == settings.stored_recommendations
    assert {(event.entity_id, event.changes["status"][1]) for event in audited} == {
        (str(ids["Spreewerk Robotik GmbH"]), "approved"),
        (str(ids["Nirgendwo AG"]), "archived"),
    }
    rejection = mails_to(settings, founders["Nirgendwo AG"])[-1]
    body = rejection.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert reason in body.decode()
