"""Domain events: a domain says what it changed; the domains that care subscribe.

A service publishes an event after it has written a change, in the same session: ``await
events.publish(session, CompanyProfileChanged(...))``. Every subscriber runs at once, inside that
transaction, so whatever it writes commits or rolls back with the change; work that should wait for the
commit (recomputations, mail) it hands to ``jobs.after_commit``, which drops it on a rollback. The
publishing domain does not know its subscribers: ``app.py`` wires them (:func:`subscribe`), and a domain
further down the import order may subscribe to one further up, never the reverse.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session

Session = AsyncSession | async_scoped_session[AsyncSession]
E = TypeVar("E")
Handler = Callable[[Session, E], Awaitable[None]]

_subscribers: dict[type[Any], list[Handler[Any]]] = {}


def subscribe(event_type: type[E], handler: Handler[E]) -> None:
    """Call ``handler`` for every published ``event_type``; subscribing the same handler again changes nothing."""
    handlers = _subscribers.setdefault(event_type, [])
    if handler not in handlers:
        handlers.append(handler)


def subscribers(event_type: type[Any]) -> list[Handler[Any]]:
    return list(_subscribers.get(event_type, ()))


async def publish(session: Session, event: object) -> None:
    """Run the subscribers of ``event`` in the publisher's transaction, in the order they subscribed."""
    for handler in _subscribers.get(type(event), ()):
        await handler(session, event)
