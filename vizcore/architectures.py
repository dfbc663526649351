"""The two default architectures, built as functional Keras models with stable layer names.

Both are sized so that training on the full Fashion-MNIST set takes minutes on two CPU cores.
"""

from __future__ import annotations

import keras
from keras import layers


def build_vgg_small(input_shape=(28, 28, 1), num_classes: int = 10) -> keras.Model:
    """A small VGG-style CNN mirroring VGG16's layer names and its dense head.

    ``block1_conv1`` (32 maps, 28x28) -> ``block1_pool`` -> ``block2_conv1`` (64, 14x14) ->
    ``block2_pool`` -> ``block3_conv1`` (128, 7x7, the last conv layer) -> ``block3_pool``
    (3x3) -> ``flatten`` -> ``fc1`` (256) -> ``fc2`` (128) -> ``predictions`` (softmax).
    Conv layers carry their own ReLU (as in VGG16), so each ``*_conv*`` output is a rectified
    feature map.
    """
    inp = keras.Input(input_shape, name="input")
    x = inp
    for block, filters in ((1, 32), (2, 64), (3, 128)):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu",
                          name=f"block{block}_conv1")(x)
        x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.3, name="dropout1")(x)
    x = layers.Dense(256, activation="relu", name="fc1")(x)
    x = layers.Dropout(0.3, name="dropout2")(x)
    x = layers.Dense(128, activation="relu", name="fc2")(x)
    out = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inp, out, name="fashion_vgg_small")


def build_gap_cnn(input_shape=(28, 28, 1), num_classes: int = 10) -> keras.Model:
    """A global-average-pooling CNN (Lin et al. 2013; Zhou et al. 2016) so that CAM applies.

    Conv -> BatchNorm -> ReLU units: ``block1_conv1`` (32, 28x28), ``block2_conv1`` (64, 14x14),
    ``block3_conv1`` and ``block3_conv2`` (128, 7x7); ``block3_relu2`` feeds ``gap``, then one
    softmax ``predictions`` layer, so a class score is a weighted sum of the last maps' means.
    """
    inp = keras.Input(input_shape, name="input")
    x = inp
    for block, conv, filters, pool in ((1, 1, 32, True), (2, 1, 64, True), (3, 1, 128, False),
                                       (3, 2, 128, False)):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                          name=f"block{block}_conv{conv}")(x)
        x = layers.BatchNormalization(name=f"block{block}_bn{conv}")(x)
        x = layers.Activation("relu", name=f"block{block}_relu{conv}")(x)
        if pool:
            x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    out = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inp, out, name="fashion_gap_cnn")


ARCHITECTURES = {"vgg_small": build_vgg_small, "gap_cnn": build_gap_cnn}
