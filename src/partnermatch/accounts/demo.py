"""Demo accounts for `partnermatch demo`: a staff account and a member of one demo company.

Their passwords are generated once and kept in var/demo-credentials.json (readable by the owner
only), so every run can print them and no fixed password ever ships."""

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.accounts.service import AccountService, normalize_email
from partnermatch.companies.models import Company
from partnermatch.companies.repository import CompanyRepository
from partnermatch.enums import UserRole
from partnermatch.settings import Settings

STAFF_EMAIL = "staff@demo.partnermatch.invalid"
MEMBER_EMAIL = "member@demo.partnermatch.invalid"


@dataclass(frozen=True)
class DemoCredential:
    role: str
    email: str
    password: str
    company: str | None = None


async def ensure_demo_accounts(session: AsyncSession, settings: Settings) -> list[DemoCredential]:
    path = settings.var_dir / "demo-credentials.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    accounts = AccountService(session, settings=settings)
    company = await CompanyRepository(session=session).first_approved()
    wanted: list[tuple[UserRole, str, Company | None]] = [(UserRole.STAFF, STAFF_EMAIL, None)]
    if company is not None:
        wanted.append((UserRole.MEMBER, MEMBER_EMAIL, company))
    credentials = []
    for role, email, for_company in wanted:
        user = await accounts.users.by_email(normalize_email(email))
        password = stored.get(email)
        if user is None:
            password = password or f"demo-{secrets.token_urlsafe(12)}"
            company_id = for_company.id if for_company else None
            user = await accounts.create_user(email, password, role=role, company_id=company_id)
        elif password is None:
            # The credentials file was lost: the account gets a new password that is printed again.
            password = f"demo-{secrets.token_urlsafe(12)}"
            await accounts.set_password(user.id, password)
        if user.email_verified_at is None:
            # Demo addresses cannot receive mail; the demo member must be able to invite and give feedback.
            user.email_verified_at = datetime.now(UTC)
        if role is UserRole.MEMBER and user.digest_consent_at is None:
            # The demo member receives the weekly match digest (into var/mail/, like all demo mail).
            user.digest_consent_at = datetime.now(UTC)
        stored[email] = password
        name = for_company.name if for_company and user.company_id == for_company.id else None
        credentials.append(DemoCredential(role.value, email, password, name))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stored, indent=2))
    path.chmod(0o600)
    return credentials
