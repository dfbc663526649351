"""Shared fixtures: tiny seeded models and the shipped ones."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Tests never read or write the machine's result store (tests that need one point it at a
# temporary folder); browser-test servers inherit this.
os.environ["VIZCORE_STORE"] = "off"

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_cnn():
    """A small functional CNN (8x8x1 -> 3 classes) with fixed seeds, as a ModelInfo."""
    import keras

    from vizcore.models import ModelInfo

    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inp)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(6, activation="relu", name="fc1")(x)
    out = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    model = keras.Model(inp, out)
    return ModelInfo("tiny", "tiny", model, "0..1", ["a", "b", "c"])


@pytest.fixture(scope="session")
def shipped_vgg():
    from vizcore.models import load_builtin

    return load_builtin("fashion_vgg")


@pytest.fixture(scope="session")
def shipped_gap():
    from vizcore.models import load_builtin

    return load_builtin("fashion_gap")
