"""The demo accounts can do what the demo is for: the member invites colleagues and gives feedback."""

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.accounts.demo import MEMBER_EMAIL, STAFF_EMAIL, ensure_demo_accounts
from partnermatch.accounts.repository import UserRepository
from partnermatch.settings import Settings
from tests.conftest import create_company


async def test_the_demo_member_has_a_verified_address(
    db_session: AsyncSession, settings: Settings, tmp_path: Path
) -> None:
    company_id = await create_company(db_session, "Demo GmbH")
    demo_settings = settings.model_copy(update={"var_dir": tmp_path})
    credentials = await ensure_demo_accounts(db_session, demo_settings)
    assert {c.email for c in credentials} == {STAFF_EMAIL, MEMBER_EMAIL}
    users = UserRepository(session=db_session)
    member = await users.by_email(MEMBER_EMAIL)
    assert member is not None
    assert member.company_id == company_id
    assert member.email_verified_at is not None

    # A demo database from before the rule: the next run verifies the member.
    member.email_verified_at = None
    await db_session.flush()
    await ensure_demo_accounts(db_session, demo_settings)
    assert member.email_verified_at is not None
