"""Versioned model artifacts: a joblib file plus a JSON metadata file next to it.

joblib is pickle, so loading runs code from the file: an artifact is loaded only if
its sha256 matches the one recorded when it was written (later: in the database
registry) and it was written by the same scikit-learn version.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import scipy
import sklearn

from ml.pipeline import RankingPipeline, describe_time
from partnermatch.ranking.data import Dataset

FORMAT_VERSION = 1


class ArtifactRefused(Exception):
    """The artifact does not match its metadata or this environment; it was not unpickled."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def metadata_path(path: Path) -> Path:
    return path.with_suffix(".json")


def save(model: RankingPipeline, ds: Dataset, path: Path) -> dict[str, Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path, compress=3)
    now = datetime.now(UTC)
    metadata: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "version": now.strftime("%Y%m%d%H%M%S%f"),
        "created_at": now.isoformat(),
        "artifact": path.name,
        "sha256": sha256_file(path),
        "training_snapshot": {name: sha256_file(p) for name, p in sorted(ds.files.items())},
        "cutoff": describe_time(model.cutoff_),
        "validation_cutoff": describe_time(model.validation_cutoff_),
        "feature_names": list(model.feature_names_),
        "parameters": model.get_params(),
        "libraries": {
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "joblib": joblib.__version__,
            "python": platform.python_version(),
        },
        "holdout_metrics": model.holdout_metrics_,
        "train_seconds": model.fit_seconds_,
    }
    metadata_path(path).write_text(json.dumps(metadata, indent=2) + "\n")
    return metadata


def load(path: Path, expected_sha256: str | None = None) -> RankingPipeline:
    """Verify, then unpickle. ``expected_sha256`` defaults to the one in the metadata file."""
    meta_file = metadata_path(path)
    if not meta_file.exists():
        raise ArtifactRefused(f"{meta_file} is missing")
    metadata = json.loads(meta_file.read_text())
    expected = expected_sha256 or metadata.get("sha256")
    actual = sha256_file(path)
    if actual != expected:
        raise ArtifactRefused(f"{path}: sha256 {actual} does not match the recorded {expected}")
    trained_with = metadata.get("libraries", {}).get("scikit-learn")
    if trained_with != sklearn.__version__:
        raise ArtifactRefused(
            f"{path} was written by scikit-learn {trained_with}, this is {sklearn.__version__}: retrain"
        )
    model = joblib.load(path)
    if not isinstance(model, RankingPipeline):
        raise ArtifactRefused(f"{path} does not hold a RankingPipeline")
    return model
