"""One small generated dataset for the ranking and ml tests, written once per session."""

from pathlib import Path

import pytest

from partnermatch.ranking.data import Dataset, default_cutoff, load_dataset
from partnermatch.ranking.features import State, TextModel, Vocabulary, build_state, fit_text
from partnermatch.synthetic.generator import GeneratorConfig, generate

_CACHE: dict[str, Path] = {}


def small_dataset_dir(base: Path) -> Path:
    """300 companies x 200 leads; shared by tests/ranking and tests/ml through this cache."""
    if "dir" not in _CACHE:
        directory = base / "ranking-small"
        generate(directory, GeneratorConfig(companies=300, leads=200, seed=3))
        _CACHE["dir"] = directory
    return _CACHE["dir"]


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_dataset_dir(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def dataset(dataset_dir: Path) -> Dataset:
    return load_dataset(dataset_dir)


@pytest.fixture(scope="session")
def text_models(dataset: Dataset) -> tuple[Vocabulary, TextModel]:
    return fit_text(dataset)


@pytest.fixture(scope="session")
def state(dataset: Dataset, text_models: tuple[Vocabulary, TextModel]) -> State:
    return build_state(dataset, default_cutoff(dataset.interactions), *text_models)
