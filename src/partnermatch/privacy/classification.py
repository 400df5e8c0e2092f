"""Which columns hold personal data: the one list that the GDPR export and erasure follow.

Every column of every table is classified here, and tests/privacy fails on a column that is not,
so a new column cannot start holding personal data without someone deciding what happens to it."""

from enum import StrEnum


class Kind(StrEnum):
    PERSONAL = "personal"  # exported to the person, removed or anonymised on erasure
    SECRET = "secret"  # credential hashes: never exported, removed on erasure
    PLAIN = "plain"  # not personal: exported when about the person, kept on erasure
    INTERNAL = "internal"  # ORM bookkeeping: neither exported nor meaningful


def _columns(*, personal: str = "", secret: str = "", plain: str = "", internal: str = "") -> dict[str, Kind]:
    kinds = {Kind.PERSONAL: personal, Kind.SECRET: secret, Kind.PLAIN: plain, Kind.INTERNAL: internal}
    return {name: kind for kind, names in kinds.items() for name in names.split()}


AUDITED_TIMES = "created_at updated_at"
SENTINEL = "sa_orm_sentinel"

CLASSIFICATION: dict[str, dict[str, Kind]] = {
    "users": _columns(
        personal="email",
        secret="password_hash",
        plain=(
            f"id role company_id is_active email_verified_at language digest_frequency digest_consent_at "
            f"{AUDITED_TIMES}"
        ),
        internal=SENTINEL,
    ),
    "user_sessions": _columns(
        secret="token_hash", plain=f"id user_id expires_at {AUDITED_TIMES}", internal=SENTINEL
    ),
    # The name is chosen by its owner and free text.
    "api_tokens": _columns(
        personal="name",
        secret="token_hash",
        plain=f"id user_id scopes expires_at revoked_at last_used_at {AUDITED_TIMES}",
        internal=SENTINEL,
    ),
    "account_tokens": _columns(
        secret="token_hash",
        plain=f"id user_id purpose expires_at used_at {AUDITED_TIMES}",
        internal=SENTINEL,
    ),
    # The invitee's address: exported with the company, deleted with it or with the invitee's account.
    "invitations": _columns(
        personal="email",
        secret="token_hash",
        plain=f"id company_id invited_by_id expires_at accepted_at revoked_at {AUDITED_TIMES}",
        internal=SENTINEL,
    ),
    # The actor names a person; changes hold before/after values of personal columns too.
    "audit_events": _columns(
        personal="actor_user_id actor_token_id changes",
        plain="id at request entity entity_id operation",
        internal=SENTINEL,
    ),
    # A company's name, description and the staff's reason can name people (sole traders, contacts).
    "companies": _columns(
        personal="name status_reason description contact_email website",
        plain=(
            "id external_id status employees founded export_experience languages registered_at "
            f"{AUDITED_TIMES}"
        ),
        internal=SENTINEL,
    ),
    "company_sectors": _columns(plain="company_id position code"),
    "company_target_cities": _columns(plain="company_id city_id"),
    "interactions": _columns(plain="id company_id lead_id kind at position reason source"),
    "mission_participants": _columns(
        plain=f"id mission_id company_id status status_at {AUDITED_TIMES}", internal=SENTINEL
    ),
    # Reference and opportunity data: about cities, sectors and foreign organisations, not people.
    "cities": _columns(plain="id name country languages partner_since status"),
    "sectors": _columns(plain="code level name name_de parent_code section"),
    "leads": _columns(
        plain=(
            "id external_id title kind organization city_id description languages budget_eur "
            f"published_at deadline status source {AUDITED_TIMES}"
        ),
        internal=SENTINEL,
    ),
    "lead_sectors": _columns(plain="lead_id position code"),
    "missions": _columns(
        plain=(
            "id external_id title city_id description starts_on ends_on capacity announced_at status "
            f"{AUDITED_TIMES}"
        ),
        internal=SENTINEL,
    ),
    "mission_sectors": _columns(plain="mission_id position code"),
    "model_versions": _columns(
        plain=(
            "id version artifact_path sha256 created_at metrics parameters sklearn_version is_active "
            "activated_at"
        )
    ),
    # The body is kept only until sent (it may hold a one-time link): never exported.
    "outbox_messages": _columns(
        personal="to_address subject",
        secret="body_text body_html headers",
        plain="id created_at kind user_id status attempts interruptions next_attempt_at claimed_at sent_at last_error",
        internal=SENTINEL,
    ),
    "undeliverable_addresses": _columns(personal="address reason", plain="id since", internal=SENTINEL),
    # Which digest went to whom for which period: exported with the member, deleted with the account.
    "sent_digests": _columns(
        plain="id user_id company_id period sent_at leads missions outbox_message_id", internal=SENTINEL
    ),
    # Operations: job names, their JSON arguments (ids and times, never addresses) and errors; the
    # schedule's runs. Nothing about a person beyond an id: neither exported nor erased.
    "failed_jobs": _columns(internal=f"id name arguments attempts error failed_at {SENTINEL}"),
    "scheduled_runs": _columns(internal=f"id name slot claimed_at finished_at error outcome {SENTINEL}"),
    # Derived from the company's profile and the model; recomputed any time, so not exported.
    "stored_recommendations": _columns(
        internal="id model_version_id company_id lead_id ranking_score score method reasons truncated computed_at"
    ),
}


def columns_of(table: str, *kinds: Kind) -> frozenset[str]:
    return frozenset(name for name, kind in CLASSIFICATION.get(table, {}).items() if kind in kinds)


def exported_columns(table: str) -> frozenset[str]:
    return columns_of(table, Kind.PERSONAL, Kind.PLAIN)
