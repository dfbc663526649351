"""Fixtures of the core tests: tiny seeded models for the attribution tests (built in seconds,
never the shipped weights); pytest finds them here, no test imports them."""

from __future__ import annotations

import pytest

from tests.helpers import blob_data, fit_blobs, make_info


@pytest.fixture(scope="session")
def ex_cnn():
    """A VGG-like chain: conv-conv-pool-conv-flatten-dense-dropout-dense(softmax), fitted."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    inp = keras.Input((28, 28, 1), name="input")
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(32, activation="relu", name="fc1")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    out = layers.Dense(4, activation="softmax", name="predictions")(x)
    return make_info(fit_blobs(keras.Model(inp, out)), "tiny_cnn")


@pytest.fixture(scope="session")
def ex_gap():
    """conv-bn-relu-pool-conv-GAP-dropout-dense(softmax), fitted: CAM applies."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(1)
    inp = keras.Input((28, 28, 1), name="input")
    x = layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv1")(inp)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.Activation("relu", name="relu1")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    out = layers.Dense(4, activation="softmax", name="predictions")(x)
    return make_info(fit_blobs(keras.Model(inp, out)), "tiny_gap")


@pytest.fixture(scope="session")
def ex_bias_free():
    """A bias-free ReLU chain with max and average pooling (LRP must conserve relevance)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(2)
    inp = keras.Input((28, 28, 1))
    x = layers.Conv2D(8, 3, activation="relu", use_bias=False)(inp)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(8, 3, strides=2, activation="relu", use_bias=False)(x)
    x = layers.AveragePooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu", use_bias=False)(x)
    out = layers.Dense(4, activation="softmax", use_bias=False)(x)
    return make_info(fit_blobs(keras.Model(inp, out), epochs=1), "bias_free")


@pytest.fixture(scope="session")
def ex_blobs():
    """A few images the fixtures were fitted on, with labels."""
    return blob_data(8, seed=123)
