import hashlib
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch import jobs
from partnermatch.access import Principal
from partnermatch.accounts.models import AccountToken, ApiToken, User, UserSession
from partnermatch.accounts.passwords import UNUSABLE, hash_password, password_problem, verify_password
from partnermatch.accounts.repository import (
    AccountTokenRepository,
    ApiTokenRepository,
    SessionRepository,
    UserFilters,
    UserRepository,
    live_session,
    live_token,
    touch_session,
    touch_token,
)
from partnermatch.accounts.schemas import (
    AccountCreate,
    AccountUpdate,
    ApiTokenCreate,
    Preferences,
    Registration,
)
from partnermatch.accounts.throttle import LoginThrottle
from partnermatch.companies.service import CompanyService
from partnermatch.enums import AccountTokenPurpose, CompanyStatus, MailKind, TokenScope, UserRole
from partnermatch.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    TooManyAttempts,
    Unauthenticated,
)
from partnermatch.jobs import Job, JobContext
from partnermatch.outbox.repository import OutboxRepository
from partnermatch.outbox.service import Outbox
from partnermatch.settings import Settings

API_TOKEN_PREFIX = "pm_"
VERIFY_EMAIL_VALID = timedelta(hours=48)
RESET_PASSWORD_VALID = timedelta(hours=1)
# Writing last_used_at on every request would turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=5)
# A session's last use (for the idle timeout) is recorded at most this often, for the same reason.
SESSION_TOUCH_RESOLUTION = timedelta(minutes=1)
INVALID_LOGIN = "email or password is wrong, or the account is disabled"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def normalize_email(email: str) -> str:
    return email.strip().lower()


# --- authentication of requests -------------------------------------------------------------------
# Functions of the request's database session rather than AccountService methods: they run on every
# authenticated request, which needs none of the repositories the service builds.
#
# They only read. The last use of a session or token, when due, is written by a job after the
# request's commit, in a short transaction of its own: a GET's transaction is deferred on SQLite and
# must not write (upgrading it fails when another writer committed meanwhile), and on PostgreSQL an
# update in the request's transaction would hold the row's lock until the request ends, queueing
# the other requests of the same session or token behind it. Like the write it replaces (which was
# rolled back with its request), the job runs only after a request whose transaction committed.


async def principal_for_session(
    db: AsyncSession, secret: str, *, now: datetime, idle_timeout: timedelta
) -> Principal | None:
    """The user of a live session: not past its lifetime, and used within `idle_timeout`."""
    row = await live_session(db, digest(secret), now, now - idle_timeout)
    if row is None:
        return None
    session_id, last_used, user_id, role, company_id, verified_at = row
    if now - last_used >= SESSION_TOUCH_RESOLUTION:
        jobs.after_commit(db, Job.of(record_session_use, session_id=session_id, now=now))
    return Principal(
        user_id=user_id,
        role=UserRole(role),
        company_id=company_id,
        email_verified=verified_at is not None,
        session_id=session_id,
    )


async def principal_for_token(db: AsyncSession, secret: str, *, now: datetime) -> Principal | None:
    row = await live_token(db, digest(secret), now)
    if row is None:
        return None
    token_id, last_used, user_id, role, company_id, verified_at, scopes = row
    if last_used is None or now - last_used >= LAST_USED_RESOLUTION:
        jobs.after_commit(db, Job.of(record_token_use, token_id=token_id, now=now))
    return Principal(
        user_id=user_id,
        role=UserRole(role),
        company_id=company_id,
        email_verified=verified_at is not None,
        token_id=token_id,
        scopes=frozenset(TokenScope(s) for s in scopes if s in TokenScope.__members__.values()),
    )


@jobs.job("accounts.session_used")
async def record_session_use(context: JobContext, *, session_id: UUID, now: datetime) -> None:
    """Job: the session was used at `now` (its idle timeout counts from there)."""
    async with context.sessions.begin() as db:
        await touch_session(db, session_id, now)


@jobs.job("accounts.token_used")
async def record_token_use(context: JobContext, *, token_id: UUID, now: datetime) -> None:
    """Job: the API token was used at `now`."""
    async with context.sessions.begin() as db:
        await touch_token(db, token_id, now)


# Rows deleted per transaction by clean_up_accounts: on SQLite a transaction holds the one write lock.
CLEANUP_BATCH = 1000


@jobs.job("accounts.clean_up", exclusive=True)
async def clean_up_accounts(context: JobContext, *, now: datetime) -> dict[str, int]:
    """Scheduled job: deletes rows nobody can use any more; how many of each kind.

    - ``sessions``: logins that ended (past their lifetime, or idle: see ``live_session``) more than
      PARTNERMATCH_CLEANUP_GRACE_DAYS before ``now``; signing out deletes a login at once;
    - ``account_tokens``: email links (address verification, password reset) used or expired as long ago;
    - ``outbox_messages``: mail sent more than PARTNERMATCH_OUTBOX_RETENTION_DAYS ago; failed mail stays.

    None of these is audited or referenced by another row. Invitations stay: an erasure finds the
    audit events about an invitation, which hold the invited address, through the invitation's row,
    and members see their company's past invitations. API tokens stay: audit events name the token a
    change was made with."""
    settings = context.settings
    ended_before = now - timedelta(days=settings.cleanup_grace_days)
    idle_before = ended_before - timedelta(minutes=settings.session_idle_minutes)
    sent_before = now - timedelta(days=settings.outbox_retention_days)
    return {
        "sessions": await _delete_in_batches(
            context,
            lambda db: SessionRepository(session=db).delete_ended(ended_before, idle_before, CLEANUP_BATCH),
        ),
        "account_tokens": await _delete_in_batches(
            context, lambda db: AccountTokenRepository(session=db).delete_spent(ended_before, CLEANUP_BATCH)
        ),
        "outbox_messages": await _delete_in_batches(
            context, lambda db: OutboxRepository(db).delete_sent(sent_before, CLEANUP_BATCH)
        ),
    }


async def _delete_in_batches(context: JobContext, delete: Callable[[AsyncSession], Awaitable[int]]) -> int:
    """Runs ``delete`` (of at most CLEANUP_BATCH rows) in a transaction each time until it finds fewer."""
    total = 0
    while True:
        async with context.sessions.begin() as db:
            deleted = await delete(db)
        total += deleted
        if deleted < CLEANUP_BATCH:
            return total


def _check_password(field: str, password: str) -> None:
    if problem := password_problem(password):
        raise InvalidInput.for_field(field, problem)


class AccountService:
    def __init__(self, session: AsyncSession, *, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.outbox = Outbox(session)
        self.users = UserRepository(session=session)
        self.sessions = SessionRepository(session=session)
        self.api_tokens = ApiTokenRepository(session=session)
        self.account_tokens = AccountTokenRepository(session=session)

    async def staff_principal(self, email: str) -> Principal:
        """The staff account a console command acts for: its changes are audited under that person."""
        user = await self.users.by_email(normalize_email(email))
        if user is None or not user.is_active or UserRole(user.role) not in (UserRole.STAFF, UserRole.ADMIN):
            raise NotFound(f"no active staff account {email}")
        return Principal(
            user_id=user.id,
            role=UserRole(user.role),
            company_id=None,
            email_verified=user.email_verified_at is not None,
        )

    # --- login, logout, passwords -----------------------------------------------------------------

    async def login(
        self, email: str, password: str, *, throttle: LoginThrottle, previous: Principal | None
    ) -> tuple[User, str]:
        """A new session (and a new session id: never one the client brought along)."""
        email = normalize_email(email)
        if (wait := await throttle.retry_after(email)) is not None:
            raise TooManyAttempts("too many failed logins for this account", retry_after=wait)
        user = await self.users.by_email(email)
        # Unknown addresses cost a hash verification too, so timing does not tell them apart.
        valid = await verify_password(user.password_hash if user else None, password)
        if user is None or not valid or not user.is_active:
            await throttle.failed(email)
            raise Unauthenticated(INVALID_LOGIN)
        await throttle.succeeded(email)
        if previous is not None and previous.session_id is not None:
            await self.sessions.end(previous.session_id)
        return user, await self._start_session(user.id)

    async def _start_session(self, user_id: UUID) -> str:
        secret = new_secret()
        now = datetime.now(UTC)
        # Housekeeping where it is cheap: a user's dead sessions go when they sign in again.
        await self.sessions.end_expired(
            user_id, now, now - timedelta(minutes=self.settings.session_idle_minutes)
        )
        expires = now + timedelta(hours=self.settings.session_max_age_hours)
        await self.sessions.add(UserSession(token_hash=digest(secret), user_id=user_id, expires_at=expires))
        return secret

    async def logout(self, principal: Principal) -> None:
        if principal.session_id is not None:
            await self.sessions.end(principal.session_id)

    async def change_password(self, principal: Principal, current: str, new: str) -> str | None:
        """Ends every session of the user; a cookie-authenticated caller gets a fresh one back."""
        user = await self.get_user(principal.user_id)
        if not await verify_password(user.password_hash, current):
            raise InvalidInput.for_field("current_password", "is wrong")
        _check_password("new_password", new)
        await self._set_password(user, new)
        return await self._start_session(user.id) if principal.session_id is not None else None

    async def set_preferences(self, principal: Principal, data: Preferences) -> User:
        """The member's language and digest choice; consent keeps the time it was first given."""
        user = await self.get_user(principal.user_id)
        user.language = None if data.language is None else data.language.value
        user.digest_frequency = data.digest_frequency.value
        if not data.digest_consent:
            user.digest_consent_at = None
        elif user.digest_consent_at is None:
            user.digest_consent_at = datetime.now(UTC)
        return await self.users.update(user)

    async def _set_password(self, user: User, password: str) -> None:
        user.password_hash = await hash_password(password)
        await self.users.update(user)
        await self.sessions.end_all(user.id)

    # --- registration, verification, reset --------------------------------------------------------

    async def register(self, data: Registration) -> None:
        _check_password("password", data.password)
        email = normalize_email(data.email)
        # Hash first: a known address must not answer faster than a new one.
        password_hash = await hash_password(data.password)
        if await self.users.by_email(email) is not None:
            self._mail(
                MailKind.ACCOUNT_NOTICE,
                email,
                "Your PartnerMatch registration",
                "Someone, perhaps you, tried to register a company with this address, which already has "
                "an account. Sign in, or reset your password if you forgot it:\n\n"
                f"{self.settings.public_url}/reset-password\n",
            )
            return
        company_data = msgspec.structs.replace(data.company, external_id=None)
        company = await CompanyService(session=self.session).register(
            company_data, status=CompanyStatus.PENDING
        )
        user = await self.users.add(
            User(email=email, password_hash=password_hash, role=UserRole.MEMBER.value, company_id=company.id)
        )
        await self._send_verification(
            user,
            f"Welcome to PartnerMatch. {company.name} is registered and waits for approval by the "
            "Berlin Partner staff; we will tell you by email.",
        )

    async def _send_verification(self, user: User, intro: str) -> None:
        secret = await self._issue(user, AccountTokenPurpose.VERIFY_EMAIL, VERIFY_EMAIL_VALID)
        self._mail(
            MailKind.VERIFICATION,
            user.email,
            "Confirm your email address for PartnerMatch",
            f"{intro}\n\nConfirm your address:\n\n"
            f"{self.settings.public_url}/verify-email?token={secret}\n\n"
            f"The link is valid for {int(VERIFY_EMAIL_VALID.total_seconds() // 3600)} hours.\n",
            user_id=user.id,
        )

    async def resend_verification(self, principal: Principal) -> None:
        user = await self.get_user(principal.user_id)
        if user.email_verified_at is not None:
            raise Conflict("your email address is already verified")
        # Earlier links keep working until they expire: whichever message arrives first will do.
        await self._send_verification(user, "You asked for a new link to confirm your PartnerMatch address.")

    async def verify_email(self, secret: str) -> None:
        token = await self._redeem(secret, AccountTokenPurpose.VERIFY_EMAIL)
        user = await self.get_user(token.user_id)
        if user.email_verified_at is None:
            user.email_verified_at = datetime.now(UTC)
            await self.users.update(user)

    async def request_reset(self, email: str) -> None:
        user = await self.users.by_email(normalize_email(email))
        if user is None or not user.is_active:
            return
        # Unknown addresses get no mail, and the answer is the same: the message leaves after the commit.
        await self._send_reset(user)

    async def _send_reset(self, user: User) -> None:
        secret = await self._issue(user, AccountTokenPurpose.RESET_PASSWORD, RESET_PASSWORD_VALID)
        self._mail(
            MailKind.PASSWORD_RESET,
            user.email,
            "Reset your PartnerMatch password",
            "Someone, perhaps you, asked to reset the password of this account. Choose a new one here:\n\n"
            f"{self.settings.public_url}/reset-password?token={secret}\n\n"
            f"The link is valid for {int(RESET_PASSWORD_VALID.total_seconds() // 60)} minutes and works "
            "once. If it was not you, ignore this message.\n",
            user_id=user.id,
        )

    async def reset_password(self, secret: str, password: str) -> None:
        _check_password("password", password)
        token = await self._redeem(secret, AccountTokenPurpose.RESET_PASSWORD)
        user = await self.get_user(token.user_id)
        await self._set_password(user, password)
        # Receiving the link proves the address as well.
        user.email_verified_at = user.email_verified_at or datetime.now(UTC)

    async def _issue(self, user: User, purpose: AccountTokenPurpose, valid: timedelta) -> str:
        secret = new_secret()
        await self.account_tokens.add(
            AccountToken(
                token_hash=digest(secret),
                user_id=user.id,
                purpose=purpose.value,
                expires_at=datetime.now(UTC) + valid,
            )
        )
        return secret

    async def _redeem(self, secret: str, purpose: AccountTokenPurpose) -> AccountToken:
        token = await self.account_tokens.usable(digest(secret), purpose.value, datetime.now(UTC))
        if token is None:
            raise InvalidInput.for_field("token", "is unknown, used or expired")
        token.used_at = datetime.now(UTC)
        return await self.account_tokens.update(token)

    def _mail(self, kind: MailKind, to: str, subject: str, body: str, *, user_id: UUID | None = None) -> None:
        # Into the outbox, in this transaction: the link works by the time the message leaves.
        self.outbox.add(kind, to, subject, body, user_id=user_id)

    # --- administration ---------------------------------------------------------------------------

    async def get_user(self, user_id: UUID) -> User:
        user = await self.users.get_one_or_none(id=user_id)
        if user is None:
            raise NotFound.for_id("user", user_id)
        return user

    async def create_user(
        self,
        email: str,
        password: str | None,
        *,
        role: UserRole,
        company_id: UUID | None = None,
        verified: bool = True,
    ) -> User:
        """For the CLI and staff: password None makes an account that only uses API tokens."""
        email = normalize_email(email)
        if password is not None:
            _check_password("password", password)
        if await self.users.by_email(email) is not None:
            raise Conflict(f"an account for {email} exists")
        return await self.users.add(
            User(
                email=email,
                password_hash=await hash_password(password) if password is not None else UNUSABLE,
                role=role.value,
                company_id=company_id,
                email_verified_at=datetime.now(UTC) if verified else None,
            )
        )

    async def create_api_token(
        self,
        user_id: UUID,
        name: str,
        *,
        scopes: frozenset[TokenScope] = frozenset(TokenScope),
        expires_at: datetime | None = None,
    ) -> tuple[ApiToken, str]:
        secret = API_TOKEN_PREFIX + new_secret()
        token = await self.api_tokens.add(
            ApiToken(
                name=name,
                token_hash=digest(secret),
                user_id=user_id,
                scopes=sorted(scopes),
                expires_at=expires_at,
            )
        )
        return token, secret

    async def revoke_api_token(self, token_id: UUID) -> ApiToken:
        token = await self.api_tokens.get_one_or_none(id=token_id)
        if token is None:
            raise NotFound.for_id("API token", token_id)
        token.revoked_at = token.revoked_at or datetime.now(UTC)
        return await self.api_tokens.update(token)

    async def set_password(self, user_id: UUID, password: str) -> None:
        _check_password("password", password)
        await self._set_password(await self.get_user(user_id), password)

    async def set_active(self, user_id: UUID, active: bool) -> User:
        user = await self.get_user(user_id)
        user.is_active = active
        if not active:
            await self.sessions.end_all(user.id)
        return await self.users.update(user)

    async def search_users(self, filters: UserFilters) -> tuple[Sequence[User], int]:
        return await self.users.search(filters)

    async def add_account(self, data: AccountCreate) -> User:
        if (data.role is UserRole.MEMBER) != (data.company_id is not None):
            raise InvalidInput.for_field("company_id", "required for members, and only for members")
        if data.company_id is not None and not await CompanyService(session=self.session).exists(
            id=data.company_id
        ):
            raise InvalidInput.for_field("company_id", "no such company")
        user = await self.create_user(
            data.email, data.password, role=data.role, company_id=data.company_id, verified=False
        )
        if data.password is None:
            await self._send_reset(user)
        return user

    async def change_account(self, principal: Principal, user_id: UUID, data: AccountUpdate) -> User:
        if data.is_active is not msgspec.UNSET:
            if user_id == principal.user_id and not data.is_active:
                raise InvalidInput.for_field("is_active", "you cannot disable your own account")
            return await self.set_active(user_id, data.is_active)
        return await self.get_user(user_id)

    async def tokens_of(self, user_id: UUID) -> Sequence[ApiToken]:
        await self.get_user(user_id)
        return await self.api_tokens.of_user(user_id)

    async def issue_token(self, user_id: UUID, data: ApiTokenCreate) -> tuple[ApiToken, str]:
        await self.get_user(user_id)
        if data.expires_at is not None and data.expires_at <= datetime.now(UTC):
            raise InvalidInput.for_field("expires_at", "must be in the future")
        return await self.create_api_token(
            user_id, data.name, scopes=frozenset(data.scopes), expires_at=data.expires_at
        )
