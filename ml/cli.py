"""The ``partnermatch`` commands of the training folder: ``evaluate``, ``rank`` and ``bench ranking``.

They reach the CLI through the ``partnermatch.commands`` and ``partnermatch.bench_commands`` entry points
(``pyproject.toml``), so that the service's own command module never imports ``ml``.
"""

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ml.bench import bench_ranking, figures_table
from ml.evaluate import across, across_rows, blind_rank, evaluate, plot, summary_rows, write_rankings
from partnermatch.cli import console, max_iter_option, model_params
from partnermatch.ranking.data import load_dataset


def _parse_cutoff(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no UTC offset (write e.g. 2025-11-01T00:00:00+01:00)")
    return parsed.timestamp()


def _dataset_dirs(arguments: tuple[Path, ...]) -> list[Path]:
    """Dataset folders as given; a file stands for the folders it lists, one a line (relative to the file;
    blank lines and ``#`` comments skipped)."""
    out: list[Path] = []
    for argument in arguments:
        if argument.is_dir():
            out.append(argument)
            continue
        for line in argument.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                folder = (argument.parent / line).resolve()
                if not folder.is_dir():
                    raise click.BadParameter(f"{argument} lists {line}, which is not a folder")
                out.append(folder)
    if not out:
        raise click.BadParameter("no dataset folder given")
    return out


def _per_dataset(path: Path | None, name: str, several: bool) -> Path | None:
    """With several datasets, each one's output beside the given path, named after the dataset."""
    if path is None or not several:
        return path
    return path.with_name(f"{path.stem}-{name}{path.suffix}")


@click.command("evaluate")
@click.argument("directories", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--cutoff", default=None, help="ISO 8601 time with offset [default: the protocol's]")
@click.option("--rankings-out", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--report-out", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--plots-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@max_iter_option
def evaluate_command(
    directories: tuple[Path, ...],
    cutoff: str | None,
    rankings_out: Path | None,
    report_out: Path | None,
    plots_dir: Path | None,
    max_iter: int | None,
) -> None:
    """Evaluate the learned ranker against baselines by the protocol of shared/dataset-format.md, on one
    dataset folder or several (or files listing them): with several, one more table across them all, with
    the learned ranker's mean relative gain over each dataset's best baseline."""
    folders = _dataset_dirs(directories)
    several = len(folders) > 1
    reports: dict[str, dict[str, Any]] = {}
    for directory in folders:
        name = directory.name if directory.name not in reports else str(directory)
        report = evaluate(
            load_dataset(directory),
            _parse_cutoff(cutoff),
            model_params=model_params(max_iter),
            log=lambda line: console.print(line),
        )
        rankings = report.pop("_rankings")
        reports[name] = report
        table = Table(title=f"{directory}: cutoff {report['cutoff']}, {report['lead_queries']} lead queries")
        for column in ("task", "method", "NDCG@10", "cold start", "recall@50", "MAP@50", "coverage@10"):
            table.add_column(column, justify="left" if column in ("task", "method") else "right")
        for row in summary_rows(report):
            table.add_row(*row)
        Console().print(table)
        candidate = report["candidate_generation"]
        click.echo(
            f"candidate recall {candidate['candidate_recall']:.4f}; trained in {report['train_seconds']:.1f} s, "
            f"peak memory {report['peak_memory_mb']:.0f} MB"
        )
        out = _per_dataset(rankings_out, name, several)
        if out is not None:
            write_rankings(out, rankings["leads"], rankings["missions"])
        if plots_dir is not None:
            for path in plot(report, plots_dir / name if several else plots_dir):
                click.echo(f"wrote {path}")
    result: dict[str, Any] = reports[next(iter(reports))]
    if several:
        summary = across(reports)
        table = Table(title=f"{len(reports)} datasets: NDCG@10, learned vs the best baseline of each")
        for column in ("dataset", "task", "method", "NDCG@10", "gain"):
            table.add_column(column, justify="left" if column in ("dataset", "task", "method") else "right")
        for row in across_rows(summary):
            table.add_row(*row)
        Console().print(table)
        result = {"across": summary, "datasets": reports}
    if report_out is not None:
        report_out.parent.mkdir(parents=True, exist_ok=True)
        report_out.write_text(json.dumps(result, indent=2) + "\n")


@click.command("rank")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--cutoff", required=True, help="ISO 8601 time with offset: the folder holds what existed before it"
)
@click.option(
    "--queries",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="One query a line: company:<id> or mission:<id>",
)
@click.option("--rankings-out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@max_iter_option
def rank_command(
    directory: Path, cutoff: str, queries: Path, rankings_out: Path, max_iter: int | None
) -> None:
    """Blind ranking: train on a pre-cutoff folder and rank the listed queries' protocol candidates."""
    at = _parse_cutoff(cutoff)
    assert at is not None
    lines = [line.strip() for line in queries.read_text().splitlines() if line.strip()]
    bad = [line for line in lines if not line.startswith(("company:", "mission:"))]
    if bad:
        raise click.BadParameter(
            f"{bad[0]!r} is neither company:<id> nor mission:<id>", param_hint="--queries"
        )
    leads, missions = blind_rank(load_dataset(directory), at, lines, model_params(max_iter))
    write_rankings(rankings_out, leads, missions)
    click.echo(f"wrote {rankings_out}: {len(leads)} company and {len(missions)} mission queries")


@click.command("ranking")
@click.option("--companies", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--leads", type=click.IntRange(min=1), default=5_000, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--data",
    "data",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Measure on this dataset folder instead of generating one (--companies, --leads, --seed are ignored)",
)
@click.option(
    "--requests",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="On-demand requests for new companies",
)
@max_iter_option
def bench_ranking_command(
    companies: int, leads: int, seed: int, data: Path | None, requests: int, max_iter: int | None
) -> None:
    """Time training, the full recompute (top 50 for every company) and new-company requests; peak memory."""
    figures = bench_ranking(
        companies=companies,
        leads=leads,
        seed=seed,
        data=data,
        requests=requests,
        model_params=model_params(max_iter),
        report=lambda line: console.print(line, highlight=False),
    )
    Console().print(figures_table(figures))
