"""Small helpers shared by tests."""

import numpy as np


def weights_snapshot(model) -> list[np.ndarray]:
    """Copies of every weight array, to check that explaining never mutates a model."""
    return [np.array(w) for w in model.get_weights()]


def assert_weights_equal(model, snapshot: list[np.ndarray]) -> None:
    after = model.get_weights()
    assert len(after) == len(snapshot)
    for a, b in zip(snapshot, after):
        np.testing.assert_array_equal(a, b)
