"""Filters evolving over training: snapshots of a CNN after every epoch, from random weights on.

Trains the default architecture (:func:`vizcore.architectures.build_vgg_small`) from scratch on a
class-balanced subset of Fashion-MNIST and records, at initialisation and after every epoch:

* the first-layer kernels (as Zeiler and Fergus 2014, arXiv:1311.2901, followed features across
  training epochs in their Fig. 4);
* the feature maps of a fixed image at a few layers;
* an activation-maximization image of a few units (gradient ascent on the input: Erhan, Bengio,
  Courville and Vincent 2009, Univ. Montreal Tech. Rep. 1341; Simonyan, Vedaldi and Zisserman
  2013, arXiv:1312.6034), from the same seeded start every epoch so changes come from the
  weights only;
* the model's probabilities for the fixed image and the loss/accuracy curves.

A recording is saved as a compressed ``.npz`` (arrays) plus a ``.json`` (config, units, history).

Cost: ``epochs`` forward+backward passes over the subset; per snapshot one forward pass over the
training subset and the validation set (epoch 0 only), one forward pass of the fixed image and
``actmax_steps`` forward+backward passes of a batch of one image per unit (compiled once).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from vizcore.data import FASHION_CLASSES, DataUnavailable, load_fashion_mnist
from vizcore.train import batch_callback
from vizcore.transfer import SHIPPED_RUNS_DIR, USER_RUNS_DIR

#: Layers whose feature maps of the fixed image are recorded.
DEFAULT_MAP_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1")
#: (layer, unit) pairs whose activation-maximization image is recorded. Conv units are the centre
#: neuron of a channel (pre-ReLU response), Dense units are pre-softmax logits.
DEFAULT_UNITS = (
    ("block2_conv1", 0), ("block2_conv1", 1), ("block2_conv1", 2), ("block2_conv1", 3),
    ("block3_conv1", 0), ("block3_conv1", 1), ("block3_conv1", 2), ("block3_conv1", 3),
    ("predictions", 1), ("predictions", 5), ("predictions", 8), ("predictions", 9),
)
FORMAT = "vizcore-evolution/1"
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")

Progress = Callable[[float, str], None] | None
StopFlag = Callable[[], bool] | threading.Event | None


@dataclass
class EvolutionRecording:
    """Snapshots of one training run; index 0 is the random initialisation, index e the state
    after epoch e.

    Attributes:
        config: Epochs, training size, batch size, seed, actmax settings, data source.
        epochs: (S,) epoch of each snapshot, 0..E.
        kernels: (S, n, kh, kw, cin) float32 first-layer kernels.
        first_layer: Name of the first conv layer.
        fixed_image: uint8 (H, W, C) the image whose feature maps are recorded.
        fixed_label: Its true class.
        maps: Layer -> (S, k, h, w) float32 feature maps of the fixed image (first k channels).
        probs: (S, classes) the model's probabilities for the fixed image.
        units: One (layer, unit, label) per activation-maximization image.
        actmax: (S, U, H, W, C) float32 images in the input range [0, 1].
        actmax_scores: (S, U) the unit's score reached by its image.
        history: Metric -> (S,) values; index 0 is evaluated before training, index e is what
            Keras reported for epoch e (training metrics averaged over the epoch, with dropout).
        class_names: Class names of the task.
        seconds: Wall time of the recording.
        created: ISO timestamp.
        stopped: Cut short by the user (fewer snapshots than planned).
    """

    config: dict
    epochs: np.ndarray
    kernels: np.ndarray
    first_layer: str
    fixed_image: np.ndarray
    fixed_label: int
    maps: dict[str, np.ndarray]
    probs: np.ndarray
    units: list[tuple[str, int, str]]
    actmax: np.ndarray
    actmax_scores: np.ndarray
    history: dict[str, list[float]]
    class_names: list[str] = field(default_factory=lambda: list(FASHION_CLASSES))
    seconds: float = 0.0
    created: str = ""
    stopped: bool = False
    path: str | None = None

    @property
    def num_snapshots(self) -> int:
        return len(self.epochs)

    def kernel_change(self) -> np.ndarray:
        """(S,) relative distance of the first-layer kernels from their initial values,
        ``||W_e - W_0|| / ||W_0||`` (0 at initialisation)."""
        k = self.kernels.reshape(len(self.kernels), -1).astype(np.float64)
        return np.linalg.norm(k - k[0], axis=1) / max(np.linalg.norm(k[0]), 1e-12)

    def title(self) -> str:
        c = self.config
        acc = self.history.get("val_accuracy", [])
        s = (f"{self.created[:16].replace('T', ' ')}: {int(self.epochs[-1])} epochs on "
             f"{c.get('train_size')} images")
        if len(acc):
            s += f", validation accuracy {acc[0]:.0%} -> {acc[-1]:.0%}"
        return s + (" (stopped)" if self.stopped else "")

    # ----------------------------------------------------------------- persistence

    def save(self, folder: str | Path = USER_RUNS_DIR, name: str | None = None) -> Path:
        """Write ``<name>.npz`` (compressed arrays) and ``<name>.json`` (the rest) into
        ``folder``; returns the .npz path and sets ``self.path``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if name is None:
            stamp = (self.created or datetime.now().isoformat(timespec="seconds")).replace(":", "")
            name = f"evolution_{stamp}"
            i = 1
            while (folder / f"{name}.npz").exists():
                name = f"evolution_{stamp}_{i}"
                i += 1
        arrays = {"epochs": self.epochs, "kernels": self.kernels.astype(np.float32),
                  "fixed_image": self.fixed_image, "probs": self.probs.astype(np.float32),
                  "actmax": np.round(np.clip(self.actmax, 0, 1) * 255).astype(np.uint8),
                  "actmax_scores": self.actmax_scores.astype(np.float32)}
        for layer, m in self.maps.items():
            arrays[f"maps__{layer}"] = m.astype(np.float16)
        npz = folder / f"{name}.npz"
        np.savez_compressed(npz, **arrays)
        meta = {"format": FORMAT, "config": self.config, "first_layer": self.first_layer,
                "fixed_label": int(self.fixed_label), "units": [list(u) for u in self.units],
                "history": self.history, "class_names": self.class_names,
                "seconds": self.seconds, "created": self.created, "stopped": self.stopped,
                "map_layers": list(self.maps)}
        npz.with_suffix(".json").write_text(json.dumps(meta, indent=1))
        self.path = str(npz)
        return npz

    @classmethod
    def load(cls, path: str | Path) -> EvolutionRecording:
        """Read a recording written by :meth:`save` (give the .npz or the .json path).

        Raises:
            ValueError: not a vizcore evolution recording.
        """
        npz = Path(path).with_suffix(".npz")
        try:
            meta = json.loads(npz.with_suffix(".json").read_text())
            if meta.get("format") != FORMAT:
                raise ValueError("unknown format")
            with np.load(npz) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise ValueError(f"{npz} is not a vizcore evolution recording ({exc})") from exc
        maps = {layer: arrays[f"maps__{layer}"].astype(np.float32)
                for layer in meta["map_layers"]}
        return cls(meta["config"], arrays["epochs"], arrays["kernels"], meta["first_layer"],
                   arrays["fixed_image"], meta["fixed_label"], maps, arrays["probs"],
                   [tuple(u) for u in meta["units"]],
                   arrays["actmax"].astype(np.float32) / 255.0, arrays["actmax_scores"],
                   meta["history"], meta["class_names"], meta["seconds"], meta["created"],
                   meta["stopped"], str(npz))


def list_recordings(dirs: Sequence[str | Path] = (SHIPPED_RUNS_DIR, USER_RUNS_DIR)
                    ) -> list[Path]:
    """The .npz files of every evolution recording in ``dirs`` (those with their .json)."""
    out = []
    for d in dirs:
        if Path(d).is_dir():
            out += [p for p in sorted(Path(d).glob("evolution_*.npz"))
                    if p.with_suffix(".json").is_file()]
    return out


# --------------------------------------------------------------------------- act-max


class UnitMaximizer:
    """Activation maximization of several units at once, one image per unit, as one compiled
    ``tf.function`` (the gradient-ascent loop runs inside the graph).

    A conv unit is one neuron: the centre position of a channel, scored on its
    *pre-activation* response (recomputed from the layer's input with its own kernel and bias,
    so a unit silenced by the ReLU still gets a gradient), which shows the pattern it looks for
    inside its receptive field; Dense units are scored on their pre-activation (for the output
    layer: the logit before softmax). Each step: normalised gradient ascent, a small pull
    towards grey (L2), clipping to [0, 1] and, every few steps, a 3x3 blur (the regularisers
    of Yosinski et al. 2015, arXiv:1506.06579). The model's variables are read at call time,
    so the same maximizer follows the weights as they train.

    Cost per call: ``steps`` forward+backward passes of a batch of ``len(units)`` images through
    the model up to the deepest unit's layer.
    """

    def __init__(self, model, units: Sequence[tuple[str, int]], *, steps: int = 48,
                 step_size: float = 0.05, l2: float = 0.05, blur_every: int = 4,
                 seed: int = 0) -> None:
        import keras
        import tensorflow as tf

        self.units = [(str(layer), int(u)) for layer, u in units]
        from vizcore.graph import graph_of

        g = graph_of(model)
        layer_names = list(dict.fromkeys(layer for layer, _ in self.units))
        lyrs = [g.layer(n) for n in layer_names]
        for lyr in lyrs:
            if type(lyr).__name__ not in ("Conv2D", "Dense"):
                raise ValueError(f"layer {lyr.name!r} is a {type(lyr).__name__}; units must be "
                                 "in Conv2D or Dense layers")
        tap = keras.Model(model.inputs, [g.input(n) for n in layer_names])
        n = len(self.units)
        masks = []
        for lyr in lyrs:
            width = int(lyr.kernel.shape[-1])
            m = np.zeros((n, width), np.float32)
            for i, (layer, u) in enumerate(self.units):
                if layer == lyr.name:
                    if not 0 <= u < width:
                        raise ValueError(f"unit {u} is outside {lyr.name!r} (0..{width - 1})")
                    m[i, u] = 1.0
            masks.append(tf.constant(m))
        shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        self.input_shape = shape
        rng = np.random.default_rng(seed)
        self.x0 = (0.5 + 0.05 * rng.standard_normal((n, *shape))).clip(0, 1).astype(np.float32)
        blur = np.outer([1, 2, 1], [1, 2, 1]).astype(np.float32) / 16.0
        blur_k = tf.constant(np.tile(blur[:, :, None, None], (1, 1, shape[-1], 1)))

        def scores(x):
            ins = tap(x, training=False)
            ins = ins if isinstance(ins, (list, tuple)) else [ins]
            total = tf.zeros((n,), tf.float32)
            for lyr, inp, mask in zip(lyrs, ins, masks):
                if type(lyr).__name__ == "Conv2D":
                    z = lyr.convolution_op(inp, lyr.kernel)
                    if lyr.use_bias:
                        z = z + lyr.bias
                    s = z[:, z.shape[1] // 2, z.shape[2] // 2, :]
                else:
                    s = tf.matmul(inp, lyr.kernel)
                    if lyr.use_bias:
                        s = s + lyr.bias
                total = total + tf.reduce_sum(s * mask, axis=1)
            return total

        spec = tf.TensorSpec((n, *shape), tf.float32)

        @tf.function(input_signature=[spec])
        def run(x):
            for step in tf.range(steps):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    obj = tf.reduce_sum(scores(x)) - l2 * tf.reduce_sum(tf.square(x - 0.5))
                g = tape.gradient(obj, x)
                g = g / (tf.math.reduce_std(g, axis=[1, 2, 3], keepdims=True) + 1e-8)
                x = tf.clip_by_value(x + step_size * g, 0.0, 1.0)
                if blur_every > 0:
                    blurred = tf.nn.depthwise_conv2d(x, blur_k, [1, 1, 1, 1], "SAME")
                    x = tf.where(step % blur_every == blur_every - 1, blurred, x)
            return x, scores(x)

        self._run = run

    def __call__(self) -> tuple[np.ndarray, np.ndarray]:
        """(images (U, H, W, C) in [0, 1], scores (U,)) for the model's current weights."""
        x, s = self._run(self.x0)
        return x.numpy(), s.numpy()


# --------------------------------------------------------------------------- recording


def _stop_fn(should_stop: StopFlag) -> Callable[[], bool]:
    if should_stop is None:
        return lambda: False
    return should_stop.is_set if isinstance(should_stop, threading.Event) else should_stop


def _unit_label(model, layer: str, u: int, class_names: Sequence[str]) -> str:
    if layer == model.layers[-1].name and u < len(class_names):
        return f"class {u}: {class_names[u]}"
    return f"{layer} #{u}"


def record_evolution(epochs: int = 8, train_size: int = 6000, *, batch_size: int = 64,
                     learning_rate: float = 1e-3, seed: int = 0, val_size: int = 1000,
                     fixed_index: int = 0, map_layers: Sequence[str] = DEFAULT_MAP_LAYERS,
                     n_maps: int = 16, units: Sequence[tuple[str, int]] = DEFAULT_UNITS,
                     actmax_steps: int = 48, train=None, test=None,
                     on_progress: Progress = None,
                     should_stop: StopFlag = None) -> EvolutionRecording:
    """Train :func:`~vizcore.architectures.build_vgg_small` from scratch and snapshot it after
    every epoch (see the module docstring for what is recorded).

    Args:
        epochs: Training epochs (snapshots: ``epochs + 1``, the first at initialisation).
        train_size: Class-balanced subset of the Fashion-MNIST training set.
        batch_size: Mini-batch size. learning_rate: Adam's learning rate.
        seed: Seeds the subset, the weights, the shuffling and the act-max start.
        val_size: Balanced validation images taken from the test split.
        fixed_index: Index (in the test split) of the image whose feature maps are recorded.
        map_layers: Layers whose first ``n_maps`` feature maps are recorded.
        units: (layer, unit) pairs for activation maximization (see :class:`UnitMaximizer`).
        actmax_steps: Gradient-ascent steps per snapshot.
        train, test: :class:`~vizcore.data.Dataset` to use instead of Fashion-MNIST (tests);
            by default the training split (or, when only the bundled test sample is on this
            machine, a part of it) and the test split.
        on_progress: Called as ``on_progress(fraction, message)`` after every batch and
            snapshot (fraction non-decreasing, 1.0 at the end).
        should_stop: Event or callable checked after every batch; the recording keeps the
            snapshots made so far.

    Cost: see the module docstring; about 5-10 s per epoch of 6,000 images on two CPU cores.
    """
    import keras

    from vizcore.architectures import build_vgg_small
    from vizcore.features import activations

    stop = _stop_fn(should_stop)
    report = on_progress or (lambda f, m: None)
    t_start = time.perf_counter()
    report(0.0, "Loading Fashion-MNIST...")
    if test is None:
        test = load_fashion_mnist("test")
    if train is None:
        try:
            train = load_fashion_mnist("train", allow_sample=False)
        except DataUnavailable:
            train = test  # only the bundled test sample: train on part of it
    val_idx = test.balanced_sample(val_size, seed)
    if train is test:
        rest = np.setdiff1d(np.arange(len(test)), val_idx)
        tr_idx = rest[:train_size]
    else:
        tr_idx = train.balanced_sample(train_size, seed)
    x_tr = train.images[tr_idx].astype(np.float32) / 255.0
    y_tr = train.labels[tr_idx]
    x_val = test.images[val_idx].astype(np.float32) / 255.0
    y_val = test.labels[val_idx]
    fixed = test.images[fixed_index % len(test)]
    x_fixed = fixed[None].astype(np.float32) / 255.0

    keras.utils.set_random_seed(seed)
    model = build_vgg_small(input_shape=x_tr.shape[1:], num_classes=len(train.class_names))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    first = next(lyr.name for lyr in model.layers if type(lyr).__name__ == "Conv2D")
    maximizer = UnitMaximizer(model, units, steps=actmax_steps, seed=seed)
    unit_labels = [(layer, int(u), _unit_label(model, layer, int(u), train.class_names))
                   for layer, u in units]

    snaps: dict[str, list] = {"kernels": [], "probs": [], "actmax": [], "scores": []}
    maps: dict[str, list] = {layer: [] for layer in map_layers}

    def snapshot() -> None:
        k = np.asarray(model.get_layer(first).get_weights()[0])
        snaps["kernels"].append(np.transpose(k, (3, 0, 1, 2)).copy())
        acts = activations(model, [*map_layers, model.layers[-1].name], x_fixed)
        for layer in map_layers:
            maps[layer].append(np.moveaxis(acts[layer][0], -1, 0)[:n_maps])
        snaps["probs"].append(acts[model.layers[-1].name][0])
        img, score = maximizer()
        snaps["actmax"].append(img)
        snaps["scores"].append(score)

    history = {m: [] for m in METRICS}
    steps_total = epochs + 1
    report(0.02, "Snapshot of the random initial weights...")
    tr_loss, tr_acc = model.evaluate(x_tr, y_tr, batch_size=256, verbose=0)
    va_loss, va_acc = model.evaluate(x_val, y_val, batch_size=256, verbose=0)
    for m, v in zip(METRICS, (tr_loss, tr_acc, va_loss, va_acc)):
        history[m].append(float(v))
    snapshot()

    steps = int(np.ceil(len(tr_idx) / batch_size))

    stopped = False
    for epoch in range(1, epochs + 1):
        cb = batch_callback(
            lambda b, e=epoch: report((e - 1 + (b + 1) / steps) / epochs * (1 - 1 / steps_total)
                                      + 1 / steps_total, f"Training epoch {e} of {epochs}..."),
            stop)
        h = model.fit(x_tr, y_tr, batch_size=batch_size, epochs=1, shuffle=True, verbose=0,
                      validation_data=(x_val, y_val), callbacks=[cb])
        if cb.stopped or stop():
            stopped = True
            break
        for m in METRICS:
            history[m].append(float(h.history[m][-1]))
        snapshot()
    report(1.0, "Done.")
    n = len(snaps["kernels"])
    config = {"epochs": epochs, "train_size": int(len(tr_idx)), "batch_size": batch_size,
              "learning_rate": learning_rate, "seed": seed, "val_size": int(len(val_idx)),
              "fixed_index": int(fixed_index), "n_maps": n_maps, "actmax_steps": actmax_steps,
              "architecture": "vgg_small", "source": train.source}
    return EvolutionRecording(
        config, np.arange(n), np.stack(snaps["kernels"]), first, fixed,
        int(test.labels[fixed_index % len(test)]),
        {layer: np.stack(v) for layer, v in maps.items()}, np.stack(snaps["probs"]),
        unit_labels, np.stack(snaps["actmax"]), np.stack(snaps["scores"]),
        history, list(train.class_names), round(time.perf_counter() - t_start, 2),
        datetime.now().isoformat(timespec="seconds"), stopped)
