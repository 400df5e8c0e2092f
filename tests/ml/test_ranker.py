"""The learned ranker, its artifact and the evaluate / rank / train commands on a small generated dataset."""

import dataclasses
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from ml.evaluate import evaluate, lead_relevance
from ml.training import RankingTrainer
from PIL import Image

from partnermatch.cli import cli
from partnermatch.ranking.artifact import ArtifactRefused, load, save
from partnermatch.ranking.data import Dataset, default_cutoff, load_dataset, parse_time
from partnermatch.ranking.estimators import FlatForest
from partnermatch.ranking.features import DAY, FEATURE_NAMES, KIND_FEATURE, lead_blocks, open_leads, stack
from partnermatch.ranking.model import ProfiledState, RankingModel
from partnermatch.ranking.reasons import sentence

FAST = {"max_iter": 80}


@pytest.fixture(scope="session")
def report(dataset: Dataset) -> dict[str, Any]:
    return evaluate(dataset, model_params={"max_iter": 60}, log=lambda _: None)


@pytest.fixture(scope="session")
def artifact(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("artifact") / "ranker.joblib"
    save(RankingTrainer(**FAST).fit(dataset).model_, dataset, path)
    return path


def test_learned_ranker_beats_random_and_popularity(report: dict[str, Any]) -> None:
    leads = report["leads"]
    learned = leads["learned"]["all"]["ndcg@10"]
    assert learned > leads["random"]["all"]["ndcg@10"] + 0.05
    assert learned > leads["popularity"]["all"]["ndcg@10"] + 0.05
    assert leads["learned"]["all"]["queries"] > 0
    assert set(leads["learned"]) >= {"all", "cold start", "leads without interactions", "kind: tender"}


def test_rankings_respect_the_protocol_candidates(dataset: Dataset, report: dict[str, Any]) -> None:
    cutoff = default_cutoff(dataset.interactions)
    snap = dataset.before(cutoff)
    open_ids = {
        lead_id
        for lead_id, published, end in zip(
            snap.leads.ids, snap.leads.published, snap.leads.deadline_end, strict=True
        )
        if published < cutoff < end
    }
    it = snap.interactions
    seen = {
        (snap.companies.ids[c], snap.leads.ids[lead]) for c, lead in zip(it.company, it.lead, strict=True)
    }
    rankings = report["_rankings"]["leads"]
    assert set(rankings) == set(lead_relevance(dataset, cutoff))
    for company, ranked in rankings.items():
        assert len(ranked) == len(set(ranked))
        assert set(ranked) <= open_ids
        assert not any((company, lead) in seen for lead in ranked)
        assert len(ranked) >= min(100, len(open_ids) - sum(1 for c, _ in seen if c == company))


def _copy(artifact: Path, directory: Path) -> Path:
    path = directory / artifact.name
    path.write_bytes(artifact.read_bytes())
    path.with_suffix(".json").write_text(artifact.with_suffix(".json").read_text())
    return path


def test_artifact_round_trip_and_sha256_mismatch_is_refused(artifact: Path, tmp_path: Path) -> None:
    path = _copy(artifact, tmp_path)
    metadata = json.loads(path.with_suffix(".json").read_text())
    assert set(metadata["training_snapshot"]) >= {"companies.jsonl", "leads.jsonl", "interactions.jsonl"}
    loaded = load(path)
    assert metadata["feature_names"] == list(loaded.feature_names_)
    company = loaded.state_.companies.ids[0]
    leads = loaded.state_.leads.ids[:15]
    ranked = loaded.rank(company, leads, limit=5)
    assert [r.rank for r in ranked] == [1, 2, 3, 4, 5]
    assert all(0.0 <= r.score <= 1.0 for r in ranked)
    assert all(r.reasons and all(sentence(reason) for reason in r.reasons) for r in ranked)
    # The best matches of several companies are explained by checkable evidence (sector, city, terms).
    evidence = ("Same sector: ", "You target ", "Shared terms: ", "Companies in your sector")
    explained = [
        reason
        for company_id in loaded.state_.companies.ids[:10]
        for r in loaded.rank(company_id, loaded.state_.leads.ids, limit=3)
        for reason in map(sentence, r.reasons)
    ]
    assert any(reason.startswith(evidence) for reason in explained)
    with pytest.raises(ArtifactRefused, match="sha256"):
        load(path, expected_sha256="0" * 64)
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(ArtifactRefused, match="sha256"):
        load(path)


def test_artifact_from_another_scikit_learn_is_refused(artifact: Path, tmp_path: Path) -> None:
    path = _copy(artifact, tmp_path)
    meta = path.with_suffix(".json")
    data = json.loads(meta.read_text())
    data["libraries"]["scikit-learn"] = "0.0.1"
    meta.write_text(json.dumps(data))
    with pytest.raises(ArtifactRefused, match="scikit-learn"):
        load(path)


def test_an_artifact_of_an_older_format_is_refused_with_the_remedy(artifact: Path, tmp_path: Path) -> None:
    path = _copy(artifact, tmp_path)
    meta = path.with_suffix(".json")
    data = json.loads(meta.read_text())
    data["format"] = 1  # pickled ml.pipeline.RankingPipeline, which serving no longer imports
    meta.write_text(json.dumps(data))
    with pytest.raises(ArtifactRefused, match=r"format 1.*retrain with `partnermatch train`"):
        load(path)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_evaluate_command_writes_rankings_report_and_plots(dataset_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "evaluate",
            str(dataset_dir),
            "--rankings-out",
            str(tmp_path / "rankings.jsonl"),
            "--report-out",
            str(tmp_path / "report.json"),
            "--plots-dir",
            str(tmp_path / "plots"),
            "--max-iter",
            "40",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "learned" in result.output
    lines = _read_jsonl(tmp_path / "rankings.jsonl")
    assert lines
    for line in lines:
        assert set(line) == {"query", "ranked"}
        assert line["query"].startswith(("company:", "mission:"))
        assert all(isinstance(item, str) for item in line["ranked"])
    report = json.loads((tmp_path / "report.json").read_text())
    assert {"random", "popularity", "sector rule", "tfidf cosine", "tuned blend", "learned"} <= set(
        report["leads"]
    )
    assert 0 <= report["candidate_generation"]["candidate_recall"] <= 1
    plots = sorted((tmp_path / "plots").glob("*.png"))
    assert [p.name for p in plots] == [
        "calibration_reliability.png",
        "leads_ndcg_at_k.png",
        "leads_slices_ndcg10.png",
    ]
    calibration = report["calibration"]
    assert set(calibration) == {"monotone", "isotonic"}
    for c in calibration.values():
        assert 0 <= c["ece"] <= 1
        assert sum(p["pairs"] for p in c["curve"]) == c["pairs"] > 0
    for plot in plots:
        with Image.open(plot) as image:
            assert image.width >= 600
            assert image.height >= 400


def test_rank_command_ranks_the_queries_of_a_blind_folder(dataset_dir: Path, tmp_path: Path) -> None:
    ds = load_dataset(dataset_dir)
    cutoff = default_cutoff(ds.interactions)
    blind = tmp_path / "blind"
    blind.mkdir()
    # Write the pre-cutoff folder the protocol describes, from the raw lines.
    keep_time = {
        "companies.jsonl": "registered_at",
        "leads.jsonl": "published_at",
        "interactions.jsonl": "at",
        "mission_participants.jsonl": "at",
    }
    for source in dataset_dir.glob("*.jsonl"):
        lines = source.read_text().splitlines()
        field = keep_time.get(source.name)
        if field:
            lines = [line for line in lines if parse_time(json.loads(line)[field]) < cutoff]
        (blind / source.name).write_text("\n".join(lines) + "\n")
    companies = sorted(lead_relevance(ds, cutoff))[:5]
    queries = [f"company:{c}" for c in companies] + [f"mission:{m}" for m in ds.missions.ids[:2]]
    (tmp_path / "queries.txt").write_text("\n".join(queries) + "\n")
    result = CliRunner().invoke(
        cli,
        [
            "rank",
            str(blind),
            "--cutoff",
            datetime.fromtimestamp(cutoff, UTC).isoformat(),
            "--queries",
            str(tmp_path / "queries.txt"),
            "--rankings-out",
            str(tmp_path / "out.jsonl"),
            "--max-iter",
            "40",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = _read_jsonl(tmp_path / "out.jsonl")
    assert [line["query"] for line in lines] == queries
    for line in lines:
        assert len(line["ranked"]) > 0
        assert len(line["ranked"]) == len(set(line["ranked"]))
    assert all(item.startswith("l") for line in lines[:5] for item in line["ranked"])
    assert all(item.startswith("c") for line in lines[5:] for item in line["ranked"])


def test_train_command_writes_an_artifact_with_metadata(dataset_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "model" / "ranker.joblib"
    result = CliRunner().invoke(
        cli, ["train", "--data", str(dataset_dir), "--out", str(out), "--max-iter", "40"]
    )
    assert result.exit_code == 0, result.output
    meta = json.loads(out.with_suffix(".json").read_text())
    assert {
        "version",
        "created_at",
        "sha256",
        "training_snapshot",
        "feature_names",
        "parameters",
        "libraries",
    } <= set(meta)
    assert "holdout_auc" in meta["holdout_metrics"]
    assert isinstance(load(out), RankingModel)
    assert np.isfinite(meta["train_seconds"])


def test_a_new_company_is_ranked_as_if_appended_to_the_state(dataset: Dataset, artifact: Path) -> None:
    model = load(artifact)
    newcomer = dataclasses.replace(dataset.companies.take([5]), ids=["brand-new"])
    state = model.with_profiles(newcomer)
    leads = model.state_.leads.ids
    fast = model.rank("brand-new", leads, limit=8, state=state)
    # Ranking the new company read its own rows only; nothing of the 300 known companies was copied.
    assert isinstance(state, ProfiledState)
    assert "companies" not in state.__dict__
    appended = dataclasses.replace(state)
    assert appended.companies.ids == [*dataset.companies.ids, "brand-new"]
    slow = model.rank("brand-new", leads, limit=8, state=appended)
    assert [r.key for r in fast] == [r.key for r in slow]
    assert [r.reasons for r in fast] == [r.reasons for r in slow]
    np.testing.assert_allclose([r.score for r in fast], [r.score for r in slow], rtol=1e-9)
    # A known company through the same state keeps its fitted row and history.
    known = model.state_.companies.ids[2]
    assert model.rank(known, leads, limit=5, state=state) == model.rank(known, leads, limit=5)


def test_probabilities_are_strictly_increasing_in_the_score(artifact: Path) -> None:
    model = load(artifact)
    raw = np.linspace(-20.0, 20.0, 4001)
    p = model.probability(raw)
    assert np.all(np.diff(p) > 0)
    assert p[0] > 0.0
    assert p[-1] < 1.0


def test_the_flat_forest_gives_scikit_learns_scores(artifact: Path) -> None:
    model = load(artifact)
    rng = np.random.default_rng(3)
    X = rng.normal(0.0, 2.0, size=(400, len(FEATURE_NAMES))).astype(np.float32)
    # Every branch of a split: known kinds, unseen and negative codes, missing values anywhere.
    X[:, KIND_FEATURE] = rng.integers(-2, 9, len(X))
    X[rng.random(X.shape) < 0.15] = np.nan
    for ranker in (model.ranker_ipw_, model.ranker_grade_):
        flat = FlatForest(ranker.model_)
        assert flat.columns is not None, "the preprocessor was not understood: the slow path would run"
        np.testing.assert_allclose(
            flat.decision_function(X), ranker.model_.decision_function(X), rtol=1e-12, atol=1e-12
        )
        np.testing.assert_allclose(
            flat.tree_by_tree(X), ranker.model_.decision_function(X), rtol=1e-12, atol=1e-12
        )
        # The ranker takes the flat path for a request's few rows, scikit-learn's trees for a batch.
        np.testing.assert_allclose(
            ranker.decision_function(X[:20]), ranker.model_.decision_function(X[:20]), rtol=1e-12, atol=1e-12
        )
        assert "_flat" in ranker.__dict__
        assert "_flat" not in ranker.__getstate__()


def test_a_leads_score_moves_as_its_deadline_approaches_without_retraining(artifact: Path) -> None:
    """Time features come from the time of scoring: the same fitted state and model, asked on the days up to
    a lead's deadline, see the deadline come nearer and score the lead differently."""
    model = load(artifact)
    state = model.state_
    leads = open_leads(state)
    dated = leads[np.isfinite(state.leads.deadline_end[leads])]
    dated = dated[state.leads.deadline_end[dated] - state.at > 10 * DAY]
    assert len(dated) >= 5
    companies = np.arange(min(40, len(state.companies.ids)))
    days_left = np.array([10.0, 7.0, 4.0, 1.0])
    scores = []
    for days in days_left:
        # Each lead asked ``days`` before its own deadline.
        per_lead = []
        for lead in dated:
            now = float(state.leads.deadline_end[lead]) - days * DAY
            blocks = lead_blocks(state, companies, np.array([lead]), at=now)
            np.testing.assert_allclose(blocks["days_to_deadline"], days, rtol=1e-5)
            np.testing.assert_allclose(
                blocks["lead_age_days"], (now - state.leads.published[lead]) / DAY, rtol=1e-5
            )
            X = stack(blocks, np.arange(len(companies)), np.zeros(len(companies), dtype=np.int64))
            per_lead.append(model.score_pairs(X, model.blend_score(blocks)[:, 0]))
            if days == days_left[-1]:
                ranked = model.rank(state.companies.ids[0], [state.leads.ids[lead]], limit=1, now=now)
                assert ranked[0].score == pytest.approx(float(model.probability(per_lead[-1][:1])[0]))
        scores.append(np.stack(per_lead))
    # Without a time, features are as of the state's (the training cutoff's) time, as before.
    default = lead_blocks(state, companies, dated)
    np.testing.assert_allclose(
        default["days_to_deadline"][0], (state.leads.deadline_end[dated] - state.at) / DAY, rtol=1e-5
    )
    changed = np.mean([np.abs(scores[-1] - scores[0]) > 1e-9])
    assert changed > 0.5


def test_evaluate_command_on_several_datasets_prints_one_table_with_the_mean_gain(
    dataset_dir: Path, tmp_path: Path
) -> None:
    second = tmp_path / "second"
    shutil.copytree(dataset_dir, second)
    listing = tmp_path / "datasets.txt"
    listing.write_text(f"# the shared small dataset and its copy\n{second.name}\n")
    report_out = tmp_path / "report.json"
    arguments = [
        "evaluate",
        str(dataset_dir),
        str(listing),
        "--report-out",
        str(report_out),
        "--max-iter",
        "20",
    ]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    assert "mean over datasets" in result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["datasets"]) == {dataset_dir.name, "second"}
    summary = report["across"]
    gains = []
    for name, single in report["datasets"].items():
        leads = single["leads"]
        best = max(
            ("random", "popularity", "sector rule", "tfidf cosine", "tuned blend"),
            key=lambda m: leads[m]["all"]["ndcg@10"],
        )
        entry = summary["datasets"][name]["leads"]
        assert entry["best_baseline"] == best
        expected = leads["learned"]["all"]["ndcg@10"] / leads[best]["all"]["ndcg@10"] - 1
        assert entry["gain"] == pytest.approx(expected)
        gains.append(expected)
    assert summary["mean_gain"]["leads"] == pytest.approx(sum(gains) / 2)
