"""Versioned model artifacts: a joblib file plus a JSON metadata file next to it.

joblib is pickle, so loading runs code from the file: an artifact is loaded only if its sha256 matches
the one recorded when it was written (and registered in the database), it was written by the same
scikit-learn version, and in the current artifact format.
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

from partnermatch.ranking.data import Dataset, describe_time
from partnermatch.ranking.model import RankingModel

# 2: the pickled object is ``partnermatch.ranking.model.RankingModel``; format 1 pickled the training
# folder's class (``ml.pipeline.RankingPipeline``), which serving no longer imports.
FORMAT_VERSION = 2


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


def save(model: RankingModel, ds: Dataset, path: Path) -> dict[str, Any]:
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
        "parameters": model.parameters_,
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


def load(path: Path, expected_sha256: str | None = None) -> RankingModel:
    """Verify, then unpickle. ``expected_sha256`` defaults to the one in the metadata file."""
    meta_file = metadata_path(path)
    if not meta_file.exists():
        raise ArtifactRefused(f"{meta_file} is missing")
    metadata = json.loads(meta_file.read_text())
    expected = expected_sha256 or metadata.get("sha256")
    actual = sha256_file(path)
    if actual != expected:
        raise ArtifactRefused(f"{path}: sha256 {actual} does not match the recorded {expected}")
    written_in = metadata.get("format")
    if written_in != FORMAT_VERSION:
        raise ArtifactRefused(
            f"{path} is in artifact format {written_in}, this version of PartnerMatch reads format "
            f"{FORMAT_VERSION}: retrain with `partnermatch train`"
        )
    trained_with = metadata.get("libraries", {}).get("scikit-learn")
    if trained_with != sklearn.__version__:
        raise ArtifactRefused(
            f"{path} was written by scikit-learn {trained_with}, this is {sklearn.__version__}: retrain"
        )
    model = joblib.load(path)
    if not isinstance(model, RankingModel):
        raise ArtifactRefused(f"{path} does not hold a RankingModel")
    return model
