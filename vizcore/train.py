"""Training the default models (and, later, transfer-learning runs)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vizcore.data import ASSETS, load_fashion_mnist

MODELS_DIR = ASSETS / "models"


def batch_callback(on_batch: Callable[[int], None] | None, stop: Callable[[], bool]):
    """The one Keras callback for long fits: ``on_batch(i)`` after each training batch ``i``
    (progress), and a clean stop (``model.stop_training``) as soon as ``stop()`` is true; the
    callback's ``stopped`` attribute says whether it stopped the fit."""
    import keras

    class BatchCallback(keras.callbacks.Callback):
        stopped = False

        def on_train_batch_end(self, batch, logs=None):
            if on_batch is not None:
                on_batch(batch)
            if stop():
                self.stopped = True
                self.model.stop_training = True

    return BatchCallback()


def _augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random horizontal flips (clothes are left-right symmetric; costs nothing)."""
    out = x.copy()
    flip = rng.random(len(x)) < 0.5
    out[flip] = out[flip, :, ::-1]
    return out


def train_default(arch: str, epochs: int = 10, batch_size: int = 128, seed: int = 0,
                  out_dir: Path = MODELS_DIR,
                  on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Train a default architecture on the full Fashion-MNIST training set and save it.

    Writes ``<out_dir>/<arch>.keras`` and a model card ``<out_dir>/<arch>.json`` (data, epochs,
    test accuracy, command). Needs the full training set (Debian's ``dataset-fashion-mnist``,
    the Keras cache or a download).

    Returns:
        The model card.
    """
    import keras

    from vizcore.architectures import ARCHITECTURES

    keras.utils.set_random_seed(seed)
    train = load_fashion_mnist("train", allow_sample=False)
    test = load_fashion_mnist("test", allow_sample=False)
    x_train = train.images.astype("float32") / 255.0
    x_test = test.images.astype("float32") / 255.0
    model = ARCHITECTURES[arch]()
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    lr = keras.optimizers.schedules.CosineDecay(1e-3, steps, alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    rng = np.random.default_rng(seed)
    history: dict[str, list[float]] = {}
    t0 = time.time()
    for epoch in range(epochs):
        h = model.fit(_augment(x_train, rng), train.labels, batch_size=batch_size, epochs=1,
                      validation_data=(x_test, test.labels), verbose=0)
        for k, v in h.history.items():
            history.setdefault(k, []).append(float(v[-1]))
        if on_epoch:
            on_epoch(epoch, {k: v[-1] for k, v in history.items()})
    _, acc = model.evaluate(x_test, test.labels, batch_size=512, verbose=0)
    out_dir.mkdir(parents=True, exist_ok=True)
    clean = ARCHITECTURES[arch]()  # uncompiled copy: no optimizer state in the shipped file
    clean.set_weights(model.get_weights())
    clean.save(out_dir / f"{arch}.keras")
    card = {
        "name": model.name,
        "architecture": arch,
        "data": f"Fashion-MNIST: {len(x_train)} training images ({train.source}); "
                f"evaluated on the {len(x_test)} test images",
        "input": "28x28x1 grayscale, scaled to 0..1 (bright object on black)",
        "epochs": epochs,
        "batch_size": batch_size,
        "augmentation": "random horizontal flips",
        "optimizer": "Adam, cosine-decayed learning rate from 1e-3",
        "seed": seed,
        "test_accuracy": round(float(acc), 4),
        "parameters": int(model.count_params()),
        "train_seconds": round(time.time() - t0, 1),
        "history": history,
        "command": f"python -m vizcore train --arch {arch} --epochs {epochs}",
    }
    (out_dir / f"{arch}.json").write_text(json.dumps(card, indent=2))
    return card
