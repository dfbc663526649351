"""Small helpers shared by tests (fixtures live in the conftest.py files)."""

import tempfile
from pathlib import Path

import numpy as np


def weights_snapshot(model) -> list[np.ndarray]:
    """Copies of every weight array, to check that explaining never mutates a model."""
    return [np.array(w) for w in model.get_weights()]


def assert_weights_equal(model, snapshot: list[np.ndarray]) -> None:
    after = model.get_weights()
    assert len(after) == len(snapshot)
    for a, b in zip(snapshot, after):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- attribution models

CLASSES = [f"class {i}" for i in range(4)]


def make_info(model, key: str, scaling: str = "0..1"):
    from vizcore.models import ModelInfo

    return ModelInfo(key, key, model, scaling, list(CLASSES[: model.outputs[0].shape[-1]]))


def blob_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """28x28 gray images in 0..1: noise plus a bright 7x7 square in the quadrant = the label."""
    rng = np.random.RandomState(seed)
    x = rng.uniform(0.0, 0.3, (n, 28, 28, 1)).astype(np.float32)
    y = rng.randint(0, 4, n)
    for i, c in enumerate(y):
        r0, c0 = (c // 2) * 14 + rng.randint(0, 7), (c % 2) * 14 + rng.randint(0, 7)
        x[i, r0 : r0 + 7, c0 : c0 + 7, 0] = rng.uniform(0.7, 1.0)
    return x, y


def fit_blobs(model, epochs: int = 3):
    x, y = blob_data(512)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=0, shuffle=False)
    return model


def model_file_bytes(head: str, n_classes: int, favoured: int, seed: int,
                     input_shape=(28, 28, 1), favour: float = 3.0) -> bytes:
    """A tiny CNN saved as .keras whose bias makes class ``favoured`` the likely answer."""
    import keras

    keras.utils.set_random_seed(seed)
    layers = [keras.Input(input_shape), keras.layers.Conv2D(4, 3, activation="relu", name="c1")]
    if head == "gap":
        layers.append(keras.layers.GlobalAveragePooling2D(name="gap"))
    else:
        layers += [keras.layers.MaxPooling2D(4, name="pool"), keras.layers.Flatten(name="flat")]
    layers.append(keras.layers.Dense(n_classes, activation="softmax", name="out"))
    model = keras.Sequential(layers)
    kernel, bias = model.get_layer("out").get_weights()
    bias = np.zeros_like(bias)
    bias[favoured] = favour
    model.get_layer("out").set_weights([kernel * 0.1, bias])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        return path.read_bytes()
