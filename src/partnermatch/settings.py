"""Every setting is a ``PARTNERMATCH_*`` environment variable (or a line in ``.env``)."""

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
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
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


@cache
def get_settings() -> Settings:
    return Settings()
