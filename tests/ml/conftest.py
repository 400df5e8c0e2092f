from tests.ranking.conftest import dataset, dataset_dir, state, text_models

__all__ = ["dataset", "dataset_dir", "state", "text_models"]
