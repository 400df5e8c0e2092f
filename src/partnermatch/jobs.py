"""Work that a committed change starts and nobody should wait for: it runs after the response.

A service asks for a job with :func:`after_commit`. The job waits in the session until its transaction
commits (SQLAlchemy's ``after_commit`` event) and is dropped if it rolls back, so a failed change starts
nothing. Committed jobs go to the queue of the current request, which the app opens before each request
(:func:`open_queue`) and runs after the response has been sent (:func:`run_queue`), one job after another.

A job takes ids, never ORM objects of the request, and opens its own sessions from the factory of the
:class:`JobContext` it is given (with the app's settings beside it): it decides itself how long its transactions last (on SQLite a transaction holds the one write
lock, so a job reads, computes outside any transaction, then writes briefly). A job that fails is
logged; the change it followed stays committed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from partnermatch.settings import Settings

logger = logging.getLogger(__name__)

SessionFactory = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class JobContext:
    """What every job gets from whoever runs it: sessions of the app's database, and its settings."""

    sessions: SessionFactory
    settings: Settings


@dataclass(frozen=True)
class Job:
    key: tuple[str, str]
    """What the job recomputes, e.g. ("recommendations.lead", id): asked twice before it runs, it runs once."""
    run: Callable[[JobContext], Awaitable[None]]


_PENDING = "partnermatch.jobs.pending"
_queue: ContextVar[dict[tuple[str, str], Job] | None] = ContextVar("partnermatch_jobs", default=None)


class HasInfo(Protocol):
    """A session of any flavour: sync, async or scoped."""

    @property
    def info(self) -> dict[Any, Any]: ...


def after_commit(session: HasInfo, job: Job) -> None:
    """Run ``job`` after this session's transaction commits (and after the response, in a request)."""
    pending: dict[tuple[str, str], Job] = session.info.setdefault(_PENDING, {})
    # Asked for again, a key moves to the end: it then runs after whatever it might depend on.
    pending.pop(job.key, None)
    pending[job.key] = job


def pending(session: HasInfo) -> list[Job]:
    """Jobs waiting for this session's commit."""
    return list(session.info.get(_PENDING, {}).values())


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    jobs: dict[tuple[str, str], Job] = session.info.pop(_PENDING, {})
    if not jobs:
        return
    queue = _queue.get()
    if queue is None:
        # Only requests open a queue; a command that starts jobs would open one and run it itself.
        logger.warning("jobs committed outside a request were not run: %s", sorted(jobs))
        return
    for key, job in jobs.items():
        queue.pop(key, None)
        queue[key] = job


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)


def open_queue() -> None:
    """A fresh queue for the current request (or command): committed jobs collect there."""
    _queue.set({})


async def run_queue(context: JobContext) -> int:
    """Run the current queue's jobs, each with ``context``; returns how many ran without error."""
    queue = _queue.get()
    done = 0
    while queue:
        key = next(iter(queue))
        job = queue.pop(key)
        try:
            await job.run(context)
        except Exception:
            logger.exception("job %s failed", key)
        else:
            done += 1
    return done
