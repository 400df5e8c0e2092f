"""Colleagues: a company's members invite addresses; an invitee accepts by choosing a password.

The inviter always gets the same answer, whether or not the address already has an account: the
invitation is stored and counted either way, and only the mail differs. An address with an account
is told that nothing changed (an account belongs to one company), and gets no link, so the
invitation stays pending until it expires, like one that was ignored."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from partnermatch.access import Principal
from partnermatch.accounts.models import Invitation, User
from partnermatch.accounts.passwords import hash_password, password_problem
from partnermatch.accounts.repository import InvitationRepository, UserRepository
from partnermatch.accounts.service import digest, new_secret, normalize_email
from partnermatch.audit.recorder import Actor, acting_as
from partnermatch.companies.models import Company
from partnermatch.companies.repository import CompanyRepository
from partnermatch.enums import CompanyStatus, InvitationStatus, MailKind, UserRole
from partnermatch.errors import Conflict, InvalidInput, NotFound, TooManyAttempts
from partnermatch.outbox.service import Outbox
from partnermatch.settings import Settings

INVITATION_VALID = timedelta(days=7)
LIMIT_WINDOW = timedelta(days=1)


def status_of(invitation: Invitation, now: datetime) -> InvitationStatus:
    if invitation.accepted_at is not None:
        return InvitationStatus.ACCEPTED
    if invitation.revoked_at is not None:
        return InvitationStatus.REVOKED
    if invitation.expires_at <= now:
        return InvitationStatus.EXPIRED
    return InvitationStatus.PENDING


class InvitationService:
    def __init__(self, session: AsyncSession, *, settings: Settings) -> None:
        self.settings = settings
        self.outbox = Outbox(session)
        self.invitations = InvitationRepository(session=session)
        self.users = UserRepository(session=session)
        self.companies = CompanyRepository(session=session)

    async def company(self, company_id: UUID, principal: Principal) -> Company:
        # Query scoping: another company's id is not found, like one that does not exist.
        company = await self.companies.get_visible(company_id, principal)
        if company is None:
            raise NotFound.for_id("company", company_id)
        return company

    async def members(self, company_id: UUID, principal: Principal) -> Sequence[User]:
        company = await self.company(company_id, principal)
        return await self.users.of_company(company.id)

    async def of_company(
        self, company_id: UUID, principal: Principal, status: InvitationStatus | None
    ) -> Sequence[Invitation]:
        company = await self.company(company_id, principal)
        return await self.invitations.of_company(company.id, status, datetime.now(UTC))

    async def invite(self, company_id: UUID, principal: Principal, email: str | None) -> Invitation:
        # The address is checked after the company: another company's id answers 404 whatever the body.
        company = await self.company(company_id, principal)
        if email is None:
            raise InvalidInput.for_field("email", "is required")
        if company.status == CompanyStatus.ARCHIVED:
            raise Conflict("an archived company takes no new members")
        email = normalize_email(email)
        now = datetime.now(UTC)
        await self._check_daily_limit(company.id, now)
        existing = await self.users.by_email(email)
        if existing is not None and existing.company_id == company.id:
            # Nothing new is revealed: the company's members are listed to the inviter anyway.
            raise InvalidInput.for_field("email", "is already a member of this company")
        # Inviting again replaces the pending invitation: only the newest link works.
        for previous in await self.invitations.pending_to(company.id, email, now):
            previous.revoked_at = now
        secret = new_secret()
        invitation = await self.invitations.add(
            Invitation(
                company_id=company.id,
                email=email,
                token_hash=digest(secret),
                invited_by_id=principal.user_id,
                expires_at=now + INVITATION_VALID,
            )
        )
        inviter = await self._inviter(principal)
        if existing is None:
            await self._send_invitation(email, inviter, company, secret)
        else:
            await self._tell_existing_account(email, inviter, company)
        return invitation

    async def _check_daily_limit(self, company_id: UUID, now: datetime) -> None:
        sent, oldest = await self.invitations.sent_since(company_id, now - LIMIT_WINDOW)
        if sent >= self.settings.invitations_per_company_per_day and oldest is not None:
            wait = (oldest + LIMIT_WINDOW - now).total_seconds()
            raise TooManyAttempts(
                f"a company may send {self.settings.invitations_per_company_per_day} invitations "
                "within 24 hours",
                retry_after=int(wait) + 1,
            )

    async def _inviter(self, principal: Principal) -> str:
        if principal.is_staff:
            return "The PartnerMatch staff"
        user = await self.users.get_one_or_none(id=principal.user_id)
        return user.email if user is not None else "A colleague"

    async def _send_invitation(self, email: str, inviter: str, company: Company, secret: str) -> None:
        self.outbox.add(
            MailKind.INVITATION,
            email,
            f"Join {company.name} on PartnerMatch",
            f"{inviter} invited you to join {company.name} on PartnerMatch, where Berlin "
            "companies find partners, buyers and projects in Berlin's partner cities.\n\n"
            "Choose a password to create your account:\n\n"
            f"{self.settings.public_url}/accept-invitation?token={secret}\n\n"
            f"The link is valid for {INVITATION_VALID.days} days and works once. If you do not "
            "know the sender, ignore this message.\n",
        )

    async def _tell_existing_account(self, email: str, inviter: str, company: Company) -> None:
        self.outbox.add(
            MailKind.ACCOUNT_NOTICE,
            email,
            f"Invitation to {company.name} on PartnerMatch",
            f"{inviter} invited you to join {company.name} on PartnerMatch. This address "
            "already has a PartnerMatch account, and an account belongs to one company, so "
            "nothing has changed.\n\nTo join, ask them to invite another address of yours, or "
            "delete your current account first and ask for a new invitation.\n",
        )

    async def revoke(self, company_id: UUID, invitation_id: UUID, principal: Principal) -> Invitation:
        company = await self.company(company_id, principal)
        invitation = await self.invitations.get_one_or_none(id=invitation_id, company_id=company.id)
        if invitation is None:
            raise NotFound.for_id("invitation", invitation_id)
        if invitation.accepted_at is not None:
            raise Conflict("the invitation was accepted; the colleague is a member now")
        if invitation.revoked_at is None:
            invitation.revoked_at = datetime.now(UTC)
            invitation = await self.invitations.update(invitation)
        return invitation

    async def accept(self, secret: str, password: str, *, request: str) -> User:
        """A new member of the inviting company; holding the emailed link proves the address."""
        if problem := password_problem(password):
            raise InvalidInput.for_field("password", problem)
        now = datetime.now(UTC)
        invitation = await self.invitations.usable(digest(secret), now)
        if invitation is None:
            raise InvalidInput.for_field("token", "is unknown, used, revoked or expired")
        company = await self.companies.get_one_or_none(id=invitation.company_id)
        if company is None or company.status == CompanyStatus.ARCHIVED:
            raise Conflict("the company no longer takes new members")
        if await self.users.by_email(invitation.email) is not None:
            # Only the address's owner holds the link, so this tells no one else anything.
            raise Conflict("this address has an account already; sign in to it instead")
        user = User(
            id=uuid7(),
            email=invitation.email,
            password_hash=await hash_password(password),
            role=UserRole.MEMBER.value,
            company_id=invitation.company_id,
            email_verified_at=now,
        )
        # The request is anonymous; the audit log names the new member as the one who accepted.
        with acting_as(Actor(user.id, None, request)):
            await self.users.add(user)
            invitation.accepted_at = now
            await self.invitations.update(invitation)
        return user
