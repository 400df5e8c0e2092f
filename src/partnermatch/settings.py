"""Every setting is a ``PARTNERMATCH_*`` environment variable (or a line in ``.env``)."""

import contextlib
import os
import secrets
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_REPO_ROOT = Path(__file__).resolve().parents[2]


def _default_migrations_dir() -> Path:
    # An editable install finds the repository's migrations; an installed wheel
    # (the Docker image) runs from a working directory that holds them.
    candidate = _REPO_ROOT / "migrations"
    return candidate if candidate.is_dir() else Path.cwd() / "migrations"


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
    session_max_age_hours: int = Field(default=14 * 24, ge=1, description="Lifetime of a login session.")
    login_attempts_per_ip_per_minute: int = Field(default=20, ge=1)
    login_failures_per_account: int = Field(
        default=5, ge=1, description="Failed logins per account within 15 minutes before it is throttled."
    )

    import_max_bytes: int = Field(
        default=500_000_000,
        ge=1,
        description="Admin zip import: the largest upload, and the largest total of its unpacked files.",
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
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            draft = path.with_name(f"secret_key.{os.getpid()}")
            draft.write_text(secrets.token_urlsafe(48))
            draft.chmod(0o600)
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
            draft.unlink()
        return path.read_text().strip()

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


@cache
def get_settings() -> Settings:
    return Settings()
