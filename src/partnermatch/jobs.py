"""Work that a committed change starts and nobody should wait for: named job functions with JSON arguments.

A job function is declared with :func:`job` under a stable name (queued jobs outlive a deployment, so
the name must not follow the module path) and takes a :class:`JobContext` and keyword arguments that
round-trip through JSON: ids, times, enums, numbers, strings and lists of them, never ORM objects. It
opens its own sessions from the context's factory and decides itself how long its transactions last
(on SQLite a transaction holds the one write lock, so a job reads, computes outside any transaction,
then writes briefly).

A service asks for a job with :func:`after_commit`. The job waits in the session until its transaction
commits (SQLAlchemy's ``after_commit`` event) and is dropped if it rolls back, so a failed change starts
nothing. Committed jobs collect in the queue that the request (or command, or running job) opened with
:func:`open_queue`; after the response the app hands them to its :class:`Runner`: the embedded default
runs them in the server's process, a production deployment queues them in Redis for ``partnermatch
worker`` (``partnermatch/background/``). Nothing in a job function knows which runner calls it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, get_type_hints

import msgspec
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from partnermatch.settings import Settings

logger = logging.getLogger(__name__)

SessionFactory = async_sessionmaker[AsyncSession]
JobFunction = Callable[..., Awaitable[Any]]
F = TypeVar("F", bound=JobFunction)


@dataclass(frozen=True)
class JobContext:
    """What every job gets from whoever runs it: sessions of the app's database, and its settings."""

    sessions: SessionFactory
    settings: Settings


class UnknownJob(LookupError):
    pass


@dataclass(frozen=True)
class Declared:
    name: str
    function: JobFunction
    timeout_seconds: float | None
    """Longer than ``PARTNERMATCH_JOB_TIMEOUT_SECONDS`` allows (a retraining), or None for that default."""
    exclusive: bool
    """At most one job of this key queued or running at a time, across all workers (scheduled runs)."""
    parameters: dict[str, Any]
    """The type of each keyword argument: JSON values are converted back to them before the call."""


_declared: dict[str, Declared] = {}


def job(name: str, *, timeout_seconds: float | None = None, exclusive: bool = False) -> Callable[[F], F]:
    """Declare ``function(context, **arguments)`` as the job ``name``."""

    def declare(function: F) -> F:
        known = _declared.get(name)
        if known is not None and known.function.__qualname__ != function.__qualname__:
            raise ValueError(f"job name {name!r} is taken by {known.function.__qualname__}")
        hints = get_type_hints(function)
        parameters = {
            parameter: hints.get(parameter, Any)
            for parameter in list(inspect.signature(function).parameters)[1:]
        }
        _declared[name] = Declared(name, function, timeout_seconds, exclusive, parameters)
        function.__dict__["job_name"] = name
        return function

    return declare


def declared(name: str) -> Declared:
    try:
        return _declared[name]
    except KeyError:
        raise UnknownJob(f"no job function is declared as {name!r}") from None


def declared_names() -> list[str]:
    return sorted(_declared)


def name_of(function: JobFunction) -> str:
    name: str | None = function.__dict__.get("job_name")
    if name is None:
        raise UnknownJob(f"{function.__qualname__} is not declared with @jobs.job")
    return name


@dataclass(frozen=True)
class Job:
    """One call of a declared job function, as it is queued: its name and JSON arguments."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    """Asked for twice before it runs, a job with the same key runs once; by default name and arguments."""

    @classmethod
    def of(cls, function: JobFunction, /, *, key: str = "", **arguments: Any) -> Job:
        name = name_of(function)
        # Converted now, in the change that asks for it: an argument that JSON cannot carry fails here,
        # whichever runner would have run the job.
        text = msgspec.json.encode(arguments, order="sorted")
        return cls(name, msgspec.json.decode(text), key or f"{name}:{text.decode()}")


async def call(context: JobContext, job: Job) -> Any:
    """Run ``job``'s function with its arguments converted back from JSON."""
    target = declared(job.name)
    arguments = {
        name: msgspec.convert(value, type=target.parameters.get(name, Any), strict=False)
        for name, value in job.arguments.items()
    }
    return await target.function(context, **arguments)


def backoff(first: float, attempts: int, longest: float) -> float:
    """Seconds to wait after ``attempts`` failed attempts: ``first``, doubled at each further one, at most
    ``longest`` (the jobs' retries and the outbox's)."""
    return float(min(first * 2 ** max(attempts - 1, 0), longest))


class Runner(Protocol):
    """Takes committed jobs: runs them here and now, or queues them for a worker."""

    async def enqueue(self, jobs: Sequence[Job]) -> None: ...


_PENDING = "partnermatch.jobs.pending"
_queue: ContextVar[dict[str, Job] | None] = ContextVar("partnermatch_jobs", default=None)


class HasInfo(Protocol):
    """A session of any flavour: sync, async or scoped."""

    @property
    def info(self) -> dict[Any, Any]: ...


def after_commit(session: HasInfo, job: Job) -> None:
    """Run ``job`` after this session's transaction commits (and after the response, in a request)."""
    pending: dict[str, Job] = session.info.setdefault(_PENDING, {})
    # Asked for again, a key moves to the end: it then runs after whatever it might depend on.
    pending.pop(job.key, None)
    pending[job.key] = job


def pending(session: HasInfo) -> list[Job]:
    """Jobs waiting for this session's commit."""
    return list(session.info.get(_PENDING, {}).values())


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    jobs: dict[str, Job] = session.info.pop(_PENDING, {})
    if not jobs:
        return
    queue = _queue.get()
    if queue is None:
        logger.warning("jobs committed where no queue was open were not run: %s", sorted(jobs))
        return
    for key, job in jobs.items():
        queue.pop(key, None)
        queue[key] = job


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)


def open_queue() -> None:
    """A fresh queue for the current request: committed jobs collect there until :func:`committed`."""
    _queue.set({})


def committed() -> list[Job]:
    """The jobs committed since the queue opened, in order; the queue is empty afterwards."""
    queue = _queue.get()
    if not queue:
        return []
    found = list(queue.values())
    queue.clear()
    return found


@contextmanager
def collecting() -> Iterator[list[Job]]:
    """A queue of its own for a block (a command, or a job that changes things): the list it yields holds
    the block's committed jobs when the block ends, also when it ends by an error (committed is
    committed)."""
    found: list[Job] = []
    token = _queue.set({})
    try:
        yield found
    finally:
        found.extend(committed())
        _queue.reset(token)


async def run(context: JobContext, job: Job, runner: Runner) -> Any:
    """Run one job; the jobs its own commits start go to ``runner``, also when it then fails."""
    follow_ups: list[Job] = []
    try:
        with collecting() as follow_ups:
            return await call(context, job)
    finally:
        if follow_ups:
            await runner.enqueue(follow_ups)
