"""`partnermatch train`, `model` and `recommendations`: models and their stored recommendations."""

import asyncio
from pathlib import Path
from typing import Any
from uuid import UUID

import click
from rich.console import Console
from rich.table import Table

from partnermatch.cli import console, max_iter_option, model_params, run
from partnermatch.db import session_scope
from partnermatch.recommendations.registry import ModelRegistry
from partnermatch.recommendations.training import (
    default_artifact,
    fit_and_save,
    register,
    store_recommendations,
    train_from_database,
)
from partnermatch.settings import Settings, get_settings


@click.command("train")
@click.option(
    "--data",
    "data",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Train on a dataset folder instead of the database (not registered unless --register)",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Artifact path (.joblib; metadata goes next to it as .json) [default: VAR_DIR/models/ranker-VERSION.joblib]",
)
@max_iter_option
@click.option("--register", "and_register", is_flag=True, help="With --data: register and activate the model")
def train_command(data: Path | None, out: Path | None, max_iter: int | None, and_register: bool) -> None:
    """Fit the lead and mission ranker (on the database, or a dataset folder) and write a versioned artifact.

    Trained from the database, the model is registered and becomes the active one.
    """
    settings = get_settings()
    out = out or default_artifact(settings)
    params = model_params(max_iter)
    if data is None:
        trained = run(train_from_database(settings, out, params))
        and_register = True
    else:
        trained = run(asyncio.to_thread(fit_and_save, data, out, params))
    metadata = trained.metadata
    holdout = ", ".join(f"{k} {v:.4g}" for k, v in metadata["holdout_metrics"].items())
    click.echo(
        f"wrote {out} (sha256 {metadata['sha256'][:12]}, trained in {trained.seconds:.1f} s; {holdout})"
    )
    if and_register:
        run(register(settings, trained))
        click.echo(f"registered and activated model {metadata['version']}")
        _store_recommendations(settings)


@click.group()
def model() -> None:
    """The registry of trained ranking models: exactly one is active and serves recommendations."""


async def _models(settings: Settings, action: str, version: str | None = None) -> list[dict[str, Any]]:
    async with session_scope(settings) as session:
        registry = ModelRegistry(session)
        if action == "activate" and version is not None:
            await registry.activate(version)
        elif action == "rollback":
            await registry.rollback()
        return [
            {
                "version": r.version,
                "active": r.is_active,
                "created_at": r.created_at.isoformat(timespec="seconds"),
                "sha256": r.sha256[:12],
                "auc": r.metrics.get("holdout_auc"),
                "path": r.artifact_path,
            }
            for r in await registry.list()
        ]


def _store_recommendations(
    settings: Settings, *, only_if_missing: bool = False, company_ids: list[UUID] | None = None
) -> None:
    """The stored recommendations of the active model version (see recommendations/batch.py)."""
    stored = run(store_recommendations(settings, only_if_missing=only_if_missing, company_ids=company_ids))
    if stored is not None:
        version, timings = stored
        console.print(timings.describe(version.version), highlight=False)
    elif not only_if_missing:
        console.print("no active model: nothing to store (run `partnermatch train`)", highlight=False)


@click.group()
def recommendations() -> None:
    """Stored recommendations: each approved company's top leads, computed in batch per model version."""


@recommendations.command("refresh")
@click.option("--company", default=None, help="Only this company's rows (its id)")
def recommendations_refresh_command(company: str | None) -> None:
    """Recompute the active model's stored recommendations (all approved companies, or one)."""
    company_ids = None
    if company is not None:
        try:
            company_ids = [UUID(company)]
        except ValueError:
            raise click.BadParameter(
                f"{company!r} is not a company id (a UUID)", param_hint="--company"
            ) from None
    _store_recommendations(get_settings(), company_ids=company_ids)


def _print_models(rows: list[dict[str, Any]]) -> None:
    if not rows:
        click.echo("no models registered: run `partnermatch train`")
        return
    table = Table(title="ranking models (newest first)")
    for column in ("version", "active", "created_at", "sha256", "holdout AUC", "artifact"):
        table.add_column(column)
    for r in rows:
        auc = f"{r['auc']:.3f}" if isinstance(r["auc"], float) else "-"
        table.add_row(
            r["version"], "yes" if r["active"] else "", r["created_at"], r["sha256"], auc, r["path"]
        )
    Console().print(table)


@model.command("list")
def model_list_command() -> None:
    """Registered models, newest first."""
    _print_models(run(_models(get_settings(), "list")))


@model.command("activate")
@click.argument("version")
def model_activate_command(version: str) -> None:
    """Serve recommendations from VERSION (its recommendations are stored first if it has none)."""
    settings = get_settings()
    _print_models(run(_models(settings, "activate", version)))
    _store_recommendations(settings, only_if_missing=True)


@model.command("rollback")
def model_rollback_command() -> None:
    """Activate the newest version older than the active one (storing its recommendations if it has none)."""
    settings = get_settings()
    _print_models(run(_models(settings, "rollback")))
    _store_recommendations(settings, only_if_missing=True)
