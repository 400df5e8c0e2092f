"""Records every change made by an authenticated request, in one place: a SQLAlchemy flush hook.

The authentication middleware names the actor for the request (a context variable); the hook
then writes the before/after of every changed column into audit_events in the same transaction,
so a change and its record are committed or rolled back together. Without an actor (CLI import,
migrations, anonymous registration) nothing is recorded. A scheduled job that changes what staff
review (closing leads whose deadline passed) acts as the system: :func:`system_actor`."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Table, event, insert, inspect
from sqlalchemy.orm import Session, UOWTransaction

from partnermatch.audit.models import AuditEvent


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: UUID
    token_id: UUID | None
    request: str


current_actor: ContextVar[Actor | None] = ContextVar("partnermatch_audit_actor", default=None)

# The actor of changes no person made. No account has this id (accounts have UUIDv7 ids), and it is
# not privacy.service.ANONYMOUS (0), which stands in for erased people.
SYSTEM_USER_ID = UUID(int=1)


def system_actor(job: str) -> Actor:
    """The system, acting in the scheduled job ``job``: the record's request names the job."""
    return Actor(SYSTEM_USER_ID, None, f"job {job}")


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    """For the changes an anonymous request makes on someone's behalf (accepting an invitation
    creates the account that then counts as the actor): flush inside the block."""
    token = current_actor.set(actor)
    try:
        yield
    finally:
        current_actor.reset(token)


# Bookkeeping of authentication itself, mail (its own record of what was sent; bodies may hold
# one-time links) and background work (its own record of runs and failures), not changes to data
# anyone reviews.
NOT_AUDITED = frozenset(
    {
        "audit_events",
        "user_sessions",
        "account_tokens",
        "outbox_messages",
        "undeliverable_addresses",
        "failed_jobs",
        "scheduled_runs",
        "sent_digests",
    }
)
IGNORED_COLUMNS = frozenset({"created_at", "updated_at", "sa_orm_sentinel", "last_used_at"})
SECRET_COLUMNS = frozenset({"password_hash", "token_hash"})
REDACTED = "(changed)"


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _changes(obj: Any, operation: str) -> dict[str, list[Any]]:
    state = inspect(obj)
    changes: dict[str, list[Any]] = {}
    for column in state.mapper.column_attrs:
        name = column.key
        if name in IGNORED_COLUMNS:
            continue
        if operation == "insert":
            before, after = None, getattr(obj, name)
        elif operation == "delete":
            before, after = getattr(obj, name), None
        else:
            history = state.attrs[name].history
            if not history.has_changes():
                continue
            before, after = (history.deleted[0] if history.deleted else None), getattr(obj, name)
        if before == after:
            continue
        changes[name] = [None, REDACTED] if name in SECRET_COLUMNS else [_plain(before), _plain(after)]
    return changes


def _entity_id(obj: Any) -> str:
    identity = inspect(obj).identity or tuple(
        getattr(obj, c.key) for c in inspect(obj).mapper.primary_key if c.key is not None
    )
    return "/".join(str(_plain(part)) for part in identity)


def _record(session: Session, _flush: UOWTransaction) -> None:
    actor = current_actor.get()
    if actor is None:
        return
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for operation, objects in (
        ("insert", session.new),
        ("update", session.dirty),
        ("delete", session.deleted),
    ):
        for obj in objects:
            table = getattr(obj, "__tablename__", None)
            if table is None or table in NOT_AUDITED:
                continue
            changes = _changes(obj, operation)
            if operation == "update" and not changes:
                continue
            rows.append(
                {
                    "at": now,
                    "actor_user_id": actor.user_id,
                    "actor_token_id": actor.token_id,
                    "request": actor.request[:300],
                    "entity": table,
                    "entity_id": _entity_id(obj)[:200],
                    "operation": operation,
                    "changes": changes,
                }
            )
    if rows:
        # Core, not the ORM: the flush in progress must not be asked to flush again.
        session.connection().execute(insert(cast("Table", AuditEvent.__table__)), rows)


def install() -> None:
    if not event.contains(Session, "after_flush", _record):
        event.listen(Session, "after_flush", _record)
