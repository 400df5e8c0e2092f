"""Every setting is a ``PARTNERMATCH_*`` environment variable (or a line in ``.env``)."""

import contextlib
import ipaddress
import os
import secrets
from functools import cache
from pathlib import Path
from typing import Literal

from croniter import croniter
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_REPO_ROOT = Path(__file__).resolve().parents[2]


def _default_migrations_dir() -> Path:
    # An editable install finds the repository's migrations; an installed wheel
    # (the Docker image) runs from a working directory that holds them.
    candidate = _REPO_ROOT / "migrations"
    return candidate if candidate.is_dir() else Path.cwd() / "migrations"


_FILE_SECRETS: dict[Path, str] = {}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARTNERMATCH_", env_file=".env", extra="ignore")

    var_dir: Path = Field(
        default=Path("var"), description="Runtime state: SQLite file, model artifacts, mail."
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db. "
        "Empty means an SQLite file in var_dir.",
    )
    database_pool_size: int = Field(default=10, ge=1, description="Connections per worker (PostgreSQL).")
    database_echo: bool = Field(default=False, description="Log every SQL statement.")
    migrations_dir: Path = Field(default_factory=_default_migrations_dir)
    host: str = Field(default="127.0.0.1", description="Address `partnermatch serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, description="Server worker processes.")
    debug: bool = Field(default=False, description="Tracebacks in error responses; never in production.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    timezone: str = Field(default="Europe/Berlin", description="Zone that lead deadlines are read in.")
    secret_key: SecretStr = Field(
        default=SecretStr(""),
        description="Signs CSRF tokens; empty means one generated once into var_dir/secret_key.",
    )
    insecure_cookies: bool = Field(
        default=False,
        description="Plain-HTTP development on a host other than localhost: cookies without the "
        "__Host- prefix and the Secure flag. Never in production.",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="Base URL of the service, for links in emails."
    )
    mail_from: str = Field(default="PartnerMatch <noreply@partnermatch.invalid>")
    mail_backend: Literal["file", "smtp"] = Field(
        default="file",
        description="file: development, every message an .eml file under var_dir/mail; smtp: the server below.",
    )
    smtp_host: str = Field(default="localhost", description="SMTP server (mail_backend smtp).")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str = Field(default="", description="SMTP login; empty means no authentication.")
    smtp_password: SecretStr = Field(default=SecretStr(""))
    smtp_starttls: bool = Field(default=True, description="Upgrade the connection with STARTTLS (port 587).")
    smtp_ssl: bool = Field(
        default=False, description="Implicit TLS from the first byte (port 465); smtp_starttls is then moot."
    )
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, description="Per network operation.")
    mail_max_attempts: int = Field(
        default=8, ge=1, le=100, description="Sends of one outbox message before it is kept as failed."
    )
    mail_retry_seconds: float = Field(
        default=60.0, gt=0, description="Wait before the first retry of a message; doubled at each next one."
    )
    mail_lease_seconds: float = Field(
        default=300.0,
        gt=0,
        description="A message claimed for sending longer ago than this was interrupted: sent again, once.",
    )
    outbox_poll_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How often each server worker sends what is due in the mail outbox; 0: only after commits.",
    )
    queue_url: str = Field(
        default="",
        description="redis://host:port/db: jobs are queued in Redis (SAQ) and run by `partnermatch worker` "
        "processes, any number on any hosts. Empty means they run inside the server's process.",
    )
    job_max_attempts: int = Field(
        default=5, ge=1, le=100, description="Runs of a failing job before it is kept as failed."
    )
    job_retry_seconds: float = Field(
        default=10.0, gt=0, description="Wait before a failed job's first retry; doubled at each next one."
    )
    job_retry_max_seconds: float = Field(
        default=3600.0, gt=0, description="The longest wait between retries."
    )
    job_timeout_seconds: float = Field(
        default=900.0,
        gt=0,
        description="A job running longer is stopped and retried (a retraining has its own).",
    )
    job_heartbeat_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A queued job's worker reports it alive this often; one silent for three times as long "
        "(a killed worker) is run again by another worker.",
    )
    worker_concurrency: int = Field(default=4, ge=1, le=100, description="Jobs one worker runs at once.")
    schedule_poll_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How often each job runner checks the schedule; 0: scheduled jobs never start by themselves.",
    )
    schedule_catch_up_hours: float = Field(
        default=24.0,
        ge=0,
        description="A run missed while nothing was running still starts when it is at most this late.",
    )
    schedule_lead_expiry: str = Field(
        default="5 0 * * *",
        description="Cron line in Berlin time (minute hour day month weekday; empty: never): close leads "
        "whose deadline has passed.",
    )
    schedule_cleanup: str = Field(
        default="30 3 * * *",
        description="Cron line (Berlin): delete ended sessions and used or expired tokens.",
    )
    schedule_statistics: str = Field(
        default="45 3 * * *",
        description="Cron line (Berlin): refresh the database's table statistics for its query planner.",
    )
    schedule_digest: str = Field(
        default="0 7 * * 1",
        description="Cron line (Berlin): the match digest run; each member gets theirs at their frequency.",
    )
    schedule_retrain: str = Field(
        default="0 4 * * 0",
        description="Cron line (Berlin): retrain the ranking model on the database; activated only if not "
        "worse than the active one (retrain_margin).",
    )
    invitations_per_company_per_day: int = Field(
        default=20, ge=1, description="Invitations a company may send within 24 hours."
    )
    session_max_age_hours: int = Field(default=14 * 24, ge=1, description="Lifetime of a login session.")
    login_attempts_per_ip_per_minute: int = Field(default=20, ge=1)
    login_failures_per_account: int = Field(
        default=5, ge=1, description="Failed logins per account within 15 minutes before it is throttled."
    )
    session_idle_minutes: int = Field(
        default=120, ge=1, description="A session unused for longer ends (its lifetime cap still holds)."
    )
    # Housekeeping (accounts.service.clean_up_accounts). An ended login or a used or expired link is
    # worthless at once; the grace keeps it a while for support questions ("my link did not work")
    # and so that a worker's clock running behind never deletes a row another still accepts.
    cleanup_grace_days: int = Field(
        default=7,
        ge=1,
        description="Days after which ended login sessions and used or expired email links are deleted.",
    )
    # Sent messages have no body any more, only who was sent what and when: kept for support, then
    # dropped (data minimisation). Failed ones stay for staff to look into.
    outbox_retention_days: int = Field(
        default=90, ge=1, description="Sent outbox messages are deleted this many days after they were sent."
    )
    redis_url: str = Field(
        default="",
        description="redis://host:port/db: login rate limits shared by all workers and hosts. "
        "Empty means counted in each worker's memory (one process).",
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses or networks of reverse proxies whose X-Forwarded-For "
        "names the client for the per-address login limit. Empty trusts none.",
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            msg = "must start with redis://, rediss:// or unix:// (or be empty)"
            raise ValueError(msg)
        return value

    @field_validator("queue_url")
    @classmethod
    def _queue_scheme(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            msg = "must start with redis://, rediss:// or unix:// (or be empty)"
            raise ValueError(msg)
        return value

    @field_validator(
        "schedule_digest",
        "schedule_lead_expiry",
        "schedule_cleanup",
        "schedule_statistics",
        "schedule_retrain",
    )
    @classmethod
    def _cron_line(cls, value: str) -> str:
        value = " ".join(value.split())
        if value and (len(value.split()) != 5 or not croniter.is_valid(value)):
            msg = "must be a cron line of five fields (minute hour day month weekday), or empty"
            raise ValueError(msg)
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, value: str) -> str:
        for entry in filter(None, (part.strip() for part in value.split(","))):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                msg = f"{entry!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)"
                raise ValueError(msg) from None
        return value

    @property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        entries = filter(None, (part.strip() for part in self.trusted_proxies.split(",")))
        return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)

    request_max_bytes: int = Field(
        default=1_000_000,
        ge=1024,
        description="The largest request body (JSON or form) of every route but the admin zip import, "
        "which PARTNERMATCH_IMPORT_MAX_BYTES bounds; a larger one is answered 413 before it is read.",
    )
    import_max_bytes: int = Field(
        default=500_000_000,
        ge=1,
        description="Admin zip import: the largest upload, and the largest total of its unpacked files.",
    )

    stored_recommendations: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="Leads stored per approved company by the batch after training (served without scoring).",
    )
    retrain_margin: float = Field(
        default=0.01,
        ge=-1,
        le=1,
        description="Scheduled retraining activates its new model only if the model's holdout NDCG@10 "
        "(holdout_ndcg10_final: the served score's top-10 order per held-out company) is at least the active "
        "version's recorded one minus this margin, in absolute NDCG points (0 to 1); else it is registered "
        "inactive. Negative: the new model must be better by that much.",
    )
    digest_leads: int = Field(
        default=10,
        ge=1,
        le=50,
        description="New recommended leads at most in a company's match digest, best first.",
    )
    digest_repeat_weeks: int = Field(
        default=8,
        ge=0,
        description="A lead in a company's digest is not put into its digests again for this many weeks "
        "(Berlin days; 0: leads may repeat in every digest).",
    )
    digest_missions: int = Field(
        default=3,
        ge=0,
        le=20,
        description="Upcoming trade missions fitting the company at most in its digest, soonest first.",
    )

    @field_validator("database_url")
    @classmethod
    def _supported_driver(cls, value: str) -> str:
        if value and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            msg = "must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            raise ValueError(msg)
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.var_dir / 'partnermatch.db'}"

    @property
    def session_cookie_name(self) -> str:
        return "partnermatch_session" if self.insecure_cookies else "__Host-partnermatch_session"

    @property
    def csrf_cookie_name(self) -> str:
        return "partnermatch_csrf" if self.insecure_cookies else "__Host-partnermatch_csrf"

    def resolved_secret_key(self) -> str:
        if value := self.secret_key.get_secret_value():
            return value
        # Stable across restarts and workers without configuration, yet unique per installation.
        # Written aside and linked into place, so that workers starting together agree on one key.
        path = self.var_dir / "secret_key"
        if known := _FILE_SECRETS.get(path):
            return known
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            draft = path.with_name(f"secret_key.{os.getpid()}")
            draft.write_text(secrets.token_urlsafe(48))
            draft.chmod(0o600)
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
            draft.unlink()
        # Read once per process: signing a digest's links read the file for each one. The file is never
        # rewritten (a new key would end every session and link), so what was read stays true.
        _FILE_SECRETS[path] = secret = path.read_text().strip()
        return secret

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


@cache
def get_settings() -> Settings:
    return Settings()
