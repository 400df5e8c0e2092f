"""The evaluation protocol of shared/dataset-format.md, baselines, slices, the report and the plots.

The model is fitted on ``ds.before(T)`` -- exactly what a blind-ranking folder holds -- so
evaluation and blind ranking run the same code and the future cannot leak in.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ml.metrics import calibration, evaluate_rankings
from ml.training import RankingTrainer, interacted_before, mission_matrix, past_missions
from partnermatch.ranking.data import (
    LEAD_KINDS,
    PARTICIPANT_GRADE,
    Dataset,
    berlin_date,
    default_cutoff,
    describe_time,
)
from partnermatch.ranking.features import open_leads
from partnermatch.ranking.model import BLEND_FEATURES, CANDIDATE_OFFSET, RankingModel, ScoredChunk, top_k

# Length of every ranking the protocol scores.
TOP_N = 100

METHODS = (
    "random",
    "popularity",
    "sector rule",
    "tfidf cosine",
    "tuned blend",
    "learned",
    "learned: IPW model",
    "learned: no-IPW model",
)
MISSION_METHODS = ("random", "sector rule", "learned")
# The methods the learned ranker is compared with: the best of them on a dataset is its "best baseline".
BASELINES = ("random", "popularity", "sector rule", "tfidf cosine", "tuned blend")
Rankings = dict[str, dict[str, list[str]]]


def lead_relevance(ds: Dataset, cutoff: float) -> dict[str, dict[str, int]]:
    """Protocol queries (companies registered before T with a positive at or after T) and their graded relevance
    over the candidates: leads published before T, open at T, not interacted with before T."""
    it = ds.interactions
    grade = it.grade
    open_at = (ds.leads.published < cutoff) & (cutoff < ds.leads.deadline_end)
    registered = ds.companies.registered < cutoff
    earlier = it.at < cutoff
    n_l = len(ds.leads)
    seen = set((it.company[earlier] * n_l + it.lead[earlier]).tolist())
    later = (it.at >= cutoff) & (grade >= 1) & registered[it.company]
    out: dict[str, dict[str, int]] = {}
    for c, lead, g in zip(it.company[later], it.lead[later], grade[later], strict=True):
        row = out.setdefault(ds.companies.ids[c], {})
        if open_at[lead] and int(c) * n_l + int(lead) not in seen:
            lead_id = ds.leads.ids[lead]
            row[lead_id] = max(row.get(lead_id, 0), int(g))
    return out


def mission_relevance(ds: Dataset, cutoff: float) -> dict[str, dict[str, int]]:
    registered = ds.companies.registered < cutoff
    out: dict[str, dict[str, int]] = {}
    for m in np.flatnonzero(ds.missions.announced >= cutoff):
        if not ds.missions.cities[m] or not ds.missions.sectors[m]:
            continue
        row = out.setdefault(ds.missions.ids[m], {})
        mine = ds.participants.mission == m
        for c, status in zip(ds.participants.company[mine], ds.participants.status[mine], strict=True):
            g = int(PARTICIPANT_GRADE[status])
            if registered[c] and g > 0:
                cid = ds.companies.ids[c]
                row[cid] = max(row.get(cid, 0), g)
    return out


def rank_all(
    model: RankingModel,
    snap: Dataset,
    company_ids: Sequence[str],
    methods: Sequence[str] = METHODS,
    seed: int = 0,
    relevance: Mapping[str, Mapping[str, int]] | None = None,
) -> tuple[Rankings, dict[str, float]]:
    """Top-100 lead rankings of every method for the given companies, from the model's batch path (the same
    feature blocks, candidates and exclusions as the stored recommendations)."""
    index = {cid: i for i, cid in enumerate(snap.companies.ids)}
    rows = np.array([index[c] for c in company_ids if c in index], dtype=np.int64)
    state = model.state_
    universe = open_leads(state)
    seen = interacted_before(snap, model.cutoff_)[rows][:, universe]
    rng = np.random.default_rng(seed)
    rankings: Rankings = {m: {} for m in methods}
    lead_ids = np.array(snap.leads.ids, dtype=object)
    candidate_hits = [0, 0]  # relevant pairs among the candidates, relevant pairs
    calibration_parts: list[tuple[np.ndarray, np.ndarray]] = []  # candidates' raw scores, relevance

    def rank_chunk(chunk: ScoredChunk) -> None:
        blocks, candidates, excluded = chunk.blocks, chunk.candidates, chunk.excluded
        companies = rows[chunk.part]
        fresh = -blocks["lead_age_days"] * 1e-6
        scores: dict[str, np.ndarray] = {}
        for method in methods:
            if method == "random":
                scores[method] = rng.random(excluded.shape)
            elif method == "popularity":
                scores[method] = blocks["lead_positives"] + 1e-3 * blocks["lead_views"] + fresh
            elif method == "sector rule":
                scores[method] = blocks["nace_depth"] + 0.1 * blocks["division_overlap"] + fresh
            elif method == "tfidf cosine":
                scores[method] = blocks["tfidf_word"] + blocks["tfidf_char"]
            elif method == "tuned blend":
                scores[method] = model.blend_score(blocks)
            elif method == "learned: IPW model":
                scores[method] = model.learned_block(blocks, candidates, "ipw")
            elif method == "learned: no-IPW model":
                scores[method] = model.learned_block(blocks, candidates, "grade")
        for method, score in scores.items():
            score = np.where(excluded, -np.inf, score)
            for i, c in enumerate(companies):
                best = top_k(score[i], TOP_N)
                best = best[np.isfinite(score[i][best])]
                rankings[method][snap.companies.ids[c]] = list(lead_ids[universe[best]])
        if "learned" in methods:
            for c, best in zip(companies, chunk.top, strict=True):
                rankings["learned"][snap.companies.ids[c]] = list(lead_ids[universe[best]])
        if relevance is not None:
            position = {lead_ids[j]: k for k, j in enumerate(universe)}
            for i, c in enumerate(companies):
                for lead_id, g in relevance.get(snap.companies.ids[c], {}).items():
                    k = position.get(lead_id)
                    if g >= 1 and k is not None:
                        candidate_hits[1] += 1
                        candidate_hits[0] += int(candidates[i, k])
            relevant = np.zeros(candidates.shape, dtype=bool)
            for i, c in enumerate(companies):
                for lead_id, g in relevance.get(snap.companies.ids[c], {}).items():
                    k = position.get(lead_id)
                    if g >= 1 and k is not None:
                        relevant[i, k] = True
            cells = candidates & ~excluded
            calibration_parts.append((chunk.score[cells] - CANDIDATE_OFFSET, relevant[cells]))

    model.score_in_chunks(state, rows, universe, TOP_N, rank_chunk, seen)
    found, total = candidate_hits
    rankings = {m: r for m, r in rankings.items() if r}
    info: dict[str, Any] = {"candidate_recall": found / max(total, 1), "relevant_pairs": total}
    if calibration_parts:
        raw = np.concatenate([r for r, _ in calibration_parts])
        relevant = np.concatenate([y for _, y in calibration_parts])
        info["calibration"] = calibration_report(model, raw, relevant)
    return rankings, info


def calibration_report(model: RankingModel, raw: np.ndarray, relevant: np.ndarray) -> dict[str, Any]:
    """Calibration on the holdout (the candidates of every query after the cutoff, relevant or not): the
    model's strictly monotone calibrator, and plain isotonic regression fitted on the same validation pairs
    (where the artifact has it) for comparison."""
    report = {"monotone": calibration(model.probability(raw), relevant)}
    if model.isotonic_ is not None:
        report["isotonic"] = calibration(model.isotonic_.predict(raw), relevant)
    return report


def rank_missions(model: RankingModel, snap: Dataset, mission_ids: Iterable[str], seed: int = 0) -> Rankings:
    """Companies registered before the cutoff ranked for each mission, by the model and the baselines."""
    index = {mid: i for i, mid in enumerate(snap.missions.ids)}
    rng = np.random.default_rng(seed)
    out: Rankings = {m: {} for m in MISSION_METHODS}
    ids = np.array(snap.companies.ids, dtype=object)
    rows = np.flatnonzero(snap.companies.registered < model.cutoff_)
    for mid in mission_ids:
        m = index[mid]
        missions = snap.missions
        learned = model.mission_scores(
            model.state_,
            missions.sectors[m],
            missions.cities[m],
            missions.titles[m],
            rows,
            past_missions(snap, m, model.cutoff_)[rows],
        )
        X = mission_matrix(snap, model.state_, m, rows, model.cutoff_)
        sector = X[:, 0] + 0.1 * X[:, 1]
        for method, score in (
            ("random", rng.random(len(rows))),
            ("sector rule", sector),
            ("learned", learned),
        ):
            out[method][mid] = list(ids[rows[top_k(score, TOP_N)]])
    return out


def _slice(
    rankings: Mapping[str, Sequence[str]],
    relevance: Mapping[str, Mapping[str, int]],
    queries: set[str] | None = None,
    items: set[str] | None = None,
) -> tuple[dict[str, list[str]], dict[str, dict[str, int]]]:
    """Restrict to some queries and/or some items (a ranking filtered to the items keeps its order)."""
    out_r: dict[str, list[str]] = {}
    out_rel: dict[str, dict[str, int]] = {}
    for q, ranked in rankings.items():
        if queries is not None and q not in queries:
            continue
        rel = relevance.get(q, {})
        if items is not None:
            ranked = [x for x in ranked if x in items]
            rel = {x: g for x, g in rel.items() if x in items}
        out_r[q], out_rel[q] = list(ranked), dict(rel)
    return out_r, out_rel


def evaluate(
    ds: Dataset,
    cutoff: float | None = None,
    model_params: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    started = time.perf_counter()
    cutoff = default_cutoff(ds.interactions) if cutoff is None else cutoff
    snap = ds.before(cutoff)
    log(
        f"cutoff {describe_time(cutoff)}: {len(snap.companies)} companies, {len(snap.leads)} leads, "
        f"{len(snap.interactions)} interactions before it"
    )
    model = RankingTrainer(**(model_params or {})).fit(snap, cutoff).model_
    log(f"trained in {model.fit_seconds_:.1f} s")
    relevance = lead_relevance(ds, cutoff)
    queries = sorted(relevance)
    rank_started = time.perf_counter()
    rankings, candidate = rank_all(model, snap, queries, relevance=relevance)
    calibration_of = candidate.pop("calibration", {})
    rank_seconds = time.perf_counter() - rank_started
    catalogue = open_leads(model.state_)
    catalogue_ids = {snap.leads.ids[j] for j in catalogue}
    n_catalogue = len(catalogue_ids)
    history = {snap.companies.ids[c] for c in np.unique(snap.interactions.company)}
    cold = {q for q in queries if q not in history}
    touched = {snap.leads.ids[j] for j in np.unique(snap.interactions.lead)}
    untouched = catalogue_ids - touched
    kind_of = {snap.leads.ids[j]: LEAD_KINDS[int(snap.leads.kinds[j])] for j in catalogue}

    def table(
        rankings_by_method: Rankings, rel: Mapping[str, Mapping[str, int]], size: int
    ) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for method, ranks in rankings_by_method.items():
            result[method] = {"all": evaluate_rankings(ranks, rel, size)}
            slices: dict[str, tuple[set[str] | None, set[str] | None]] = {}
            if rel is relevance:
                slices["cold start"] = (cold, None)
                slices["leads without interactions"] = (None, untouched)
                for kind in LEAD_KINDS:
                    slices[f"kind: {kind}"] = (None, {x for x, k in kind_of.items() if k == kind})
            for name, (qs, items) in slices.items():
                r, rr = _slice(ranks, rel, qs, items)
                result[method][name] = evaluate_rankings(r, rr, len(items) if items is not None else size)
        return result

    leads_report = table(rankings, relevance, n_catalogue)
    missions_rel = mission_relevance(ds, cutoff)
    mission_rankings = rank_missions(model, snap, sorted(missions_rel))
    n_companies = len(snap.companies)
    missions_report = table(mission_rankings, missions_rel, n_companies) if missions_rel else {}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report = {
        "cutoff": describe_time(cutoff),
        "cutoff_berlin_date": berlin_date(cutoff).isoformat(),
        "validation_cutoff": describe_time(model.validation_cutoff_),
        "dataset": {k: str(v) for k, v in ds.files.items()},
        "lead_queries": len(queries),
        "cold_start_queries": len(cold),
        "catalogue": n_catalogue,
        "candidate_generation": {
            **candidate,
            "per_source": model.per_source,
            "retrieval_k": model.retrieval_k,
        },
        "calibration": calibration_of,
        "ipw": {
            "learned": "mean of the IPW and no-IPW models plus the tuned blend times blend_weight",
            "learned: IPW model": "positives weighted by grade x inverse propensity of the logged position",
            "learned: no-IPW model": "positives weighted by grade",
            "selection": model.selection_,
            "propensity_by_position": [float(p) for p in model.propensity_[1:11]],
        },
        "train_seconds": model.fit_seconds_,
        "rank_seconds": rank_seconds,
        "total_seconds": time.perf_counter() - started,
        "peak_memory_mb": usage.ru_maxrss / 1024,
        "holdout": model.holdout_metrics_,
        "blend_weights": dict(zip(BLEND_FEATURES, map(float, model.blend_), strict=True)),
        "leads": leads_report,
        "missions": missions_report,
        "mission_queries": len(missions_rel),
    }
    report["_rankings"] = {
        "leads": rankings.get("learned", {}),
        "missions": mission_rankings.get("learned", {}),
    }
    return report


def across(reports: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One summary of several datasets' reports: per dataset and task, each method's NDCG@10 (overall and
    cold start), the best baseline and the learned ranker's relative gain over it; and per task the mean
    of those gains over the datasets (each dataset counts once, whatever its size)."""
    datasets: dict[str, Any] = {}
    gains: dict[str, list[float]] = {"leads": [], "missions": [], "leads cold start": []}
    for name, report in reports.items():
        entry: dict[str, Any] = {
            "candidate_recall": report["candidate_generation"]["candidate_recall"],
            "train_seconds": report["train_seconds"],
        }
        for task in ("leads", "missions"):
            methods = report[task]
            if "learned" not in methods:
                continue
            slices = ("all", "cold start") if task == "leads" else ("all",)
            for part in slices:
                ndcg = {m: methods[m][part]["ndcg@10"] for m in methods if part in methods[m]}
                baselines = {m: v for m, v in ndcg.items() if m in BASELINES}
                if not baselines:
                    continue
                best = max(baselines, key=lambda m: baselines[m])
                key = task if part == "all" else f"{task} {part}"
                gain = ndcg["learned"] / baselines[best] - 1.0 if baselines[best] > 0 else float("nan")
                entry[key] = {"ndcg@10": ndcg, "best_baseline": best, "gain": gain}
                if part == "all":
                    entry[key]["recall@50"] = methods["learned"]["all"]["recall@50"]
                if np.isfinite(gain):
                    gains[key].append(gain)
        datasets[name] = entry
    return {
        "datasets": datasets,
        "mean_gain": {k: float(np.mean(v)) for k, v in gains.items() if v},
    }


def across_rows(summary: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Rows of the cross-dataset table: dataset, task, method, NDCG@10, gain of the learned ranker."""
    rows: list[tuple[str, ...]] = []
    for name, entry in summary["datasets"].items():
        for key in ("leads", "leads cold start", "missions"):
            part = entry.get(key)
            if part is None:
                continue
            for method, value in part["ndcg@10"].items():
                mark = " (best baseline)" if method == part["best_baseline"] else ""
                gain = f"{part['gain']:+.1%}" if method == "learned" else ""
                rows.append((name, key, method + mark, f"{value:.4f}", gain))
    for key, gain in summary["mean_gain"].items():
        rows.append(("mean over datasets", key, "learned vs best baseline", "", f"{gain:+.1%}"))
    return rows


def write_rankings(
    path: Path, leads: Mapping[str, Sequence[str]], missions: Mapping[str, Sequence[str]]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for cid, ranked in leads.items():
            out.write(json.dumps({"query": f"company:{cid}", "ranked": list(ranked)}) + "\n")
        for mid, ranked in missions.items():
            out.write(json.dumps({"query": f"mission:{mid}", "ranked": list(ranked)}) + "\n")


def summary_rows(report: Mapping[str, Any]) -> list[tuple[str, str, str, str, str, str, str]]:
    rows = []
    for task in ("leads", "missions"):
        for method, slices in report[task].items():
            a = slices["all"]
            cold = slices.get("cold start", {}).get("ndcg@10")
            rows.append(
                (
                    task,
                    method,
                    f"{a['ndcg@10']:.4f}",
                    "" if cold is None else f"{cold:.4f}",
                    f"{a['recall@50']:.4f}",
                    f"{a['map@50']:.4f}",
                    f"{a['coverage@10']:.4f}",
                )
            )
    return rows


def plot(report: Mapping[str, Any], directory: Path) -> list[Path]:
    # Imported here: matplotlib costs 25 MB and a second, and only --plots-dir needs it. Agg draws files, not
    # windows: evaluation runs on servers and in CI.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for task in ("leads", "missions"):
        methods = report[task]
        if not methods:
            continue
        fig, ax = plt.subplots(figsize=(8, 5))
        for method, slices in methods.items():
            curve = slices["all"]["ndcg_curve"]
            ax.plot(range(1, len(curve) + 1), curve, label=method, linewidth=2 if "learned" in method else 1)
        ax.set_xlabel("k")
        ax.set_ylabel("NDCG@k")
        ax.set_title(f"{task}: NDCG@k by method (cutoff {report['cutoff_berlin_date']})")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = directory / f"{task}_ndcg_at_k.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    slices = [s for s in report["leads"].get("learned", {}) if s != "all"]
    if slices:
        methods = list(report["leads"])
        fig, ax = plt.subplots(figsize=(12, 5))
        width = 0.8 / len(methods)
        x = np.arange(len(slices) + 1)
        for i, method in enumerate(methods):
            values = [report["leads"][method][s]["ndcg@10"] for s in ["all", *slices]]
            ax.bar(x + i * width, values, width, label=method)
        ax.set_xticks(x + 0.4 - width / 2, ["all", *slices], rotation=30, ha="right")
        ax.set_ylabel("NDCG@10")
        ax.set_title("lead ranking: NDCG@10 per slice")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = directory / "leads_slices_ndcg10.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    calibrations = {k: v for k, v in report.get("calibration", {}).items() if v.get("curve")}
    if calibrations:
        fig, ax = plt.subplots(figsize=(6, 6))
        low = min(min(p["predicted"], p["observed"]) for c in calibrations.values() for p in c["curve"])
        high = max(max(p["predicted"], p["observed"]) for c in calibrations.values() for p in c["curve"])
        low = max(low, 1e-5)
        ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="perfect")
        for name, c in calibrations.items():
            points = [(p["predicted"], p["observed"]) for p in c["curve"]]
            ax.plot(*zip(*points, strict=True), marker="o", label=f"{name} (ECE {c['ece']:.4f})")
        # Interest is rare: most pairs sit near zero, which only logarithmic axes keep apart.
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("predicted probability of interest (bin mean)")
        ax.set_ylabel("observed rate after the cutoff")
        ax.set_title("calibration on the holdout: every query's candidates")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = directory / "calibration_reliability.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def blind_rank(
    ds: Dataset, cutoff: float, queries: Sequence[str], model_params: Mapping[str, Any] | None = None
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Train on a folder that holds only what existed before T, rank the listed queries."""
    snap = ds.before(cutoff)
    model = RankingTrainer(**(model_params or {})).fit(snap, cutoff).model_
    companies = [q.split(":", 1)[1] for q in queries if q.startswith("company:")]
    missions = [q.split(":", 1)[1] for q in queries if q.startswith("mission:")]
    known = set(snap.companies.ids)
    leads, _ = rank_all(model, snap, [c for c in companies if c in known], methods=("learned",))
    out_leads = {c: leads.get("learned", {}).get(c, []) for c in companies}
    known_missions = set(snap.missions.ids)
    ranked_missions = rank_missions(model, snap, [m for m in missions if m in known_missions])
    out_missions = {m: ranked_missions["learned"].get(m, []) for m in missions}
    return out_leads, out_missions
