"""Transfer learning against training from scratch, with live per-epoch curves and saved runs.

The *transfer* model reuses the convolutional base of a trained network (a clone of its layers
with the trained weights, frozen) and puts a new dense head on it; the *scratch* model is the
same architecture, same head, same data, same optimiser and epochs, but starts from random
weights and trains everything. On a new, small task the frozen base usually wins by a wide
margin at 100 images and the gap closes as the training set grows (Yosinski, Clune, Bengio and
Lipson 2014, "How transferable are features in deep neural networks?", arXiv:1411.1792;
Razavian, Azizpour, Sullivan and Carlsson 2014, "CNN features off-the-shelf", arXiv:1403.6382).
Fine-tuning additionally unfreezes the base's last block.

Offline default: the shipped Fashion-MNIST CNN transferred to scikit-learn's handwritten digits
(8x8 upsampled to 28x28), or to MNIST when it is cached. With VGG16 ImageNet weights on the
machine (Simonyan and Zisserman 2014, arXiv:1409.1556), the same comparison runs on a folder of
the user's images, one sub-folder per class.

Cost: per epoch, one forward and backward pass over the training set for each model (the frozen
base needs no weight gradients, so a transfer epoch is cheaper than a scratch epoch) plus one
forward pass over the validation set; one forward pass over the test set at the end.

The shared model given as the source is never modified: both models are built from
``keras.models.clone_model`` copies.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from vizcore.data import ASSETS, DIGIT_CLASSES, Dataset, DataUnavailable, ImageError
from vizcore.train import batch_callback

ROOT = ASSETS.parent
#: Runs shipped with vizcore (read-only).
SHIPPED_RUNS_DIR = ASSETS / "runs"
#: Where the app saves the user's runs (one JSON file per comparison, one .npz+.json per
#: evolution recording).
USER_RUNS_DIR = ROOT / "runs"

#: Task key -> human-readable label.
TASKS = {
    "digits": "Handwritten digits (scikit-learn)",
    "mnist": "MNIST digits (download or cache)",
    "folder": "Your image folder (VGG16 base)",
}
#: Per-epoch metrics recorded for each run (Keras names).
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
RUN_KINDS = ("transfer", "scratch")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")

OnEpoch = Callable[["Comparison", str, int], None] | None
OnBatch = Callable[["Comparison", float], None] | None
StopFlag = Callable[[], bool] | threading.Event | None


# --------------------------------------------------------------------------- data


@dataclass
class TaskData:
    """A classification task split into train / validation / test, in the model's input range.

    Attributes:
        name: Task key (``"digits"``, ``"mnist"``, ``"folder"``, ``"synthetic"``...).
        x_train, x_val, x_test: float32 (N, H, W, C) already scaled for the model.
        y_train, y_val, y_test: int64 (N,) class indices.
        class_names: One name per class.
        source: Where the data came from.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str = ""

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def limit_train(self, n: int | None, seed: int = 0) -> TaskData:
        """A copy whose training set is a class-balanced, seeded subset of ``n`` images
        (``None`` or ``n >= len`` keeps all). Validation and test sets are unchanged."""
        if n is None or n >= len(self.y_train):
            return self
        idx = _balanced(self.y_train, n, seed)
        return dataclasses.replace(self, x_train=self.x_train[idx], y_train=self.y_train[idx])


def _balanced(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of a class-balanced, seeded sample of ``n`` labels (at least one per class)."""
    ds = Dataset("tmp", np.zeros((len(labels), 1, 1, 1), np.uint8), labels, [], "")
    return ds.balanced_sample(n, seed)


def split_dataset(ds: Dataset, preprocess: Callable[[np.ndarray], np.ndarray], *,
                  test_fraction: float = 0.2, val_fraction: float = 0.1,
                  seed: int = 0) -> TaskData:
    """Stratified, seeded train / validation / test split of a raw uint8 dataset.

    Every class keeps at least one image in each split when it has three or more.
    """
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c in np.unique(ds.labels):
        idx = rng.permutation(np.flatnonzero(ds.labels == c))
        n_test = max(1, int(round(len(idx) * test_fraction))) if len(idx) >= 3 else 0
        n_val = max(1, int(round(len(idx) * val_fraction))) if len(idx) >= 3 else 0
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test:n_test + n_val])
        parts["train"].append(idx[n_test + n_val:])
    sel = {k: np.sort(np.concatenate(v)) for k, v in parts.items()}
    if min(len(v) for v in sel.values()) == 0:
        raise ValueError("Too few images to split into training, validation and test sets. "
                         "Fix: give every class at least 3 images (10 or more is better).")
    x = {k: preprocess(ds.images[v]).astype(np.float32) for k, v in sel.items()}
    y = {k: ds.labels[v].astype(np.int64) for k, v in sel.items()}
    return TaskData(ds.name, x["train"], y["train"], x["val"], y["val"], x["test"], y["test"],
                    list(ds.class_names), ds.source)


def _scale01(raw: np.ndarray) -> np.ndarray:
    return np.asarray(raw, np.float32) / 255.0


def load_task(task: str, *, seed: int = 0, folder: str | Path | None = None,
              image_size: int = 224, max_test: int = 2000, max_per_class: int = 300,
              mnist_timeout: float = 5.0) -> TaskData:
    """Load a transfer task, split and scaled for its source model.

    Args:
        task: ``"digits"`` (scikit-learn digits; 70/10/20 % split), ``"mnist"`` (the 60,000
            training images, 1,000 of them held out for validation, and a balanced
            ``max_test`` of the test images) or ``"folder"`` (see :func:`load_image_folder`;
            caffe scaling for VGG16).
        seed: Seed of the split.
        folder: The image folder for ``"folder"``.
        image_size: Side of the images for ``"folder"``.
        max_test: Cap on the MNIST test set (a balanced subset), to keep evaluation quick.
        max_per_class: Cap on images read per class for ``"folder"``.
        mnist_timeout: Download timeout for MNIST when it is not cached.

    Raises:
        DataUnavailable: MNIST offline and not cached, or the folder is missing.
        ValueError: unknown task or a folder that cannot be split.
    """
    from vizcore.data import load_digits, load_mnist
    from vizcore.models import scale_pixels

    if task == "digits":
        return split_dataset(load_digits(28), _scale01, seed=seed)
    if task == "mnist":
        train = load_mnist("train", timeout=mnist_timeout)
        test = load_mnist("test", timeout=mnist_timeout)
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(train))
        val, tr = order[:1000], np.sort(order[1000:])
        te = test.balanced_sample(max_test, seed)
        return TaskData("mnist", _scale01(train.images[tr]), train.labels[tr],
                        _scale01(train.images[val]), train.labels[val],
                        _scale01(test.images[te]), test.labels[te], list(DIGIT_CLASSES),
                        f"MNIST: {len(tr)} training, 1,000 validation and {len(te)} test images")
    if task == "folder":
        if folder is None:
            raise ValueError("The folder task needs a folder. Fix: enter the path of a folder "
                             "holding one sub-folder of images per class.")
        ds = load_image_folder(folder, image_size, max_per_class=max_per_class)
        return split_dataset(ds, lambda raw: scale_pixels(raw, "caffe"), seed=seed)
    raise ValueError(f"unknown task {task!r}; choose one of {sorted(TASKS)}")


def load_image_folder(folder: str | Path, image_size: int = 224, *, max_per_class: int = 300,
                      channels: int = 3) -> Dataset:
    """Read a folder holding one sub-folder of images per class (as Keras's
    ``image_dataset_from_directory`` expects).

    Every file is decoded with :func:`vizcore.data.load_image` (header checked first, so huge or
    broken files cost nothing) and fitted to ``image_size`` x ``image_size`` with its aspect kept.
    Unreadable files are skipped and listed in ``extra["skipped"]``.

    Raises:
        DataUnavailable: the folder does not exist.
        ValueError: fewer than two classes with images, or a class with fewer than 3 images.
    """
    from vizcore.data import fit_image, load_image

    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataUnavailable(f"{root} is not a folder on this machine. Fix: enter the path of "
                              "a folder that holds one sub-folder of images per class.")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    images, labels, names, skipped = [], [], [], []
    for d in class_dirs:
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        files = files[:max_per_class]
        got = 0
        for f in files:
            try:
                img = load_image(f)
            except (ImageError, OSError) as exc:
                skipped.append(f"{f.relative_to(root)}: {str(exc).split('.')[0]}")
                continue
            images.append(fit_image(img, (image_size, image_size), channels, invert=False))
            labels.append(len(names))
            got += 1
        if got:
            names.append(d.name)
    if len(names) < 2:
        raise ValueError(f"{root} has {len(names)} sub-folder(s) with images; at least two "
                         "classes are needed. Fix: put each class's images into its own "
                         "sub-folder, e.g. cats/*.jpg and dogs/*.jpg.")
    counts = np.bincount(labels)
    if counts.min() < 3:
        small = names[int(np.argmin(counts))]
        raise ValueError(f"Class '{small}' has only {counts.min()} readable image(s). Fix: give "
                         "every class at least 3 images (10 or more is better).")
    return Dataset("folder", np.stack(images), np.asarray(labels, np.int64), names,
                   f"{len(labels)} images in {len(names)} classes from {root}", "all",
                   extra={"skipped": skipped})


# --------------------------------------------------------------------------- models


def conv_base_output(model) -> str:
    """Name of the last layer with a 4-D (batch, h, w, c) output before the first Flatten,
    global pooling or Dense layer: where the convolutional base ends."""
    from vizcore.graph import graph_of

    last = None
    for node in graph_of(model).nodes:
        if node.kind in ("Flatten", "Dense") or node.kind.startswith("Global"):
            break
        if node.rank == 4 and node.kind != "InputLayer":
            last = node.name
    if last is None:
        raise ValueError(f"model {model.name!r} has no convolutional base (no 4-D layer output "
                         "before its first Flatten/Dense layer)")
    return last


def last_block_layers(base) -> list[str]:
    """Layers of the base's last block: those sharing the last conv layer's ``blockN_`` prefix,
    else the last conv layer alone."""
    convs = [lyr.name for lyr in base.layers if "Conv" in type(lyr).__name__]
    if not convs:
        return []
    m = re.match(r"(block\d+)_", convs[-1])
    if not m:
        return [convs[-1]]
    return [lyr.name for lyr in base.layers if lyr.name.startswith(m.group(1) + "_")]


def build_model(source, num_classes: int, *, pretrained: bool, fine_tune: bool = False,
                head_units: int = 128, pooling: str = "flatten", dropout: float = 0.3,
                seed: int = 0):
    """A new model: ``source``'s convolutional base (cloned) and a new dense head.

    Args:
        source: A functional Keras model; only read (cloned with ``keras.models.clone_model``,
            then ``set_weights`` when ``pretrained``), never modified.
        num_classes: Outputs of the new softmax head.
        pretrained: True: the base keeps ``source``'s weights and is frozen (feature
            extraction). False: the base starts from random weights and trains.
        fine_tune: With ``pretrained``, also train the base's last block (see
            :func:`last_block_layers`).
        head_units: Units of the new hidden dense layer (``head_fc``).
        pooling: ``"flatten"`` or ``"avg"`` (global average pooling, for big bases like VGG16).
        dropout: Dropout rate before the output layer.
        seed: Seeds the random weights; the head is seeded the same way for both models, so
            transfer and scratch start from the same head.

    Returns:
        An uncompiled functional model named ``"transfer"``/``"fine_tune"``/``"scratch"``;
        its attribute ``frozen_layers`` lists the frozen layer names.
    """
    import keras
    from keras import layers

    from vizcore.graph import graph_of

    keras.utils.set_random_seed(seed)
    clone = keras.models.clone_model(source)
    if pretrained:
        clone.set_weights(source.get_weights())
    cut = conv_base_output(clone)
    base = keras.Model(clone.inputs, graph_of(clone).output(cut), name="base")
    tune = set(last_block_layers(base)) if (pretrained and fine_tune) else set()
    frozen = []
    for lyr in base.layers:
        lyr.trainable = (not pretrained) or lyr.name in tune
        if not lyr.trainable and lyr.weights:
            frozen.append(lyr.name)
    keras.utils.set_random_seed(seed + 1)
    x = base.outputs[0]
    x = (layers.GlobalAveragePooling2D(name="head_pool") if pooling == "avg"
         else layers.Flatten(name="head_flatten"))(x)
    x = layers.Dense(head_units, activation="relu", name="head_fc")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    out = layers.Dense(num_classes, activation="softmax", name="head_predictions")(x)
    name = "scratch" if not pretrained else ("fine_tune" if fine_tune else "transfer")
    model = keras.Model(base.inputs, out, name=name)
    model.frozen_layers = frozen
    return model


def vgg16_base(weights: str | Path | None, image_size: int = 224):
    """VGG16's convolutional base (no top) at ``image_size``, with ImageNet weights read by
    layer name from the standard Keras file (the file with the top also works), or random.

    Raises:
        ModelLoadError: the file holds no VGG16 conv layers.
    """
    import keras

    from vizcore.models import ModelLoadError

    base = keras.applications.VGG16(weights=None, include_top=False,
                                    input_shape=(image_size, image_size, 3))
    if weights is not None:
        before = base.get_layer("block1_conv1").get_weights()[0].copy()
        try:
            base.load_weights(str(weights), by_name=True)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"{weights} is not a usable VGG16 weight file ({exc}). Fix: "
                                 "download the Keras VGG16 ImageNet weights again.") from exc
        if np.array_equal(before, base.get_layer("block1_conv1").get_weights()[0]):
            raise ModelLoadError(f"{weights} holds no VGG16 layer named block1_conv1. Fix: use "
                                 "vgg16_weights_tf_dim_ordering_tf_kernels(_notop).h5.")
    return base


# --------------------------------------------------------------------------- runs


@dataclass
class TransferConfig:
    """What a comparison trains (saved with every run).

    Attributes:
        task: Key of :data:`TASKS` (or ``"synthetic"`` in tests).
        train_size: Training images (class-balanced subset); None = all.
        epochs: Epochs for each of the two models.
        batch_size: Mini-batch size.
        learning_rate: Adam's learning rate (both models).
        fine_tune: Also train the transferred base's last block.
        head_units: Units of the new hidden dense layer.
        pooling: ``"flatten"`` or ``"avg"``.
        seed: Seeds the subset, the weights and the shuffling.
        source_model: Where the transferred base came from (a label).
        image_size: Input side for the folder task.
    """

    task: str = "digits"
    train_size: int | None = 500
    epochs: int = 8
    batch_size: int = 32
    learning_rate: float = 1e-3
    fine_tune: bool = False
    head_units: int = 128
    pooling: str = "flatten"
    seed: int = 0
    source_model: str = "fashion_vgg"
    image_size: int = 224


@dataclass
class RunHistory:
    """One model's training: per-epoch metrics and the final test accuracy.

    Attributes:
        kind: ``"transfer"`` or ``"scratch"``.
        history: Metric name (:data:`METRICS`) -> one value per completed epoch.
        epoch_seconds: Wall time of each epoch (training + validation).
        test_accuracy: Accuracy on the held-out test set after training (None until then).
        trainable_params: Parameters the optimiser updates.
        frozen_params: Parameters kept fixed.
    """

    kind: str
    history: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METRICS})
    epoch_seconds: list[float] = field(default_factory=list)
    test_accuracy: float | None = None
    test_loss: float | None = None
    trainable_params: int = 0
    frozen_params: int = 0

    @property
    def epochs_done(self) -> int:
        return len(self.history.get("loss", []))


@dataclass
class Comparison:
    """Transfer versus scratch on one task: config, both runs, and bookkeeping.

    Attributes:
        config: The :class:`TransferConfig` as a dict.
        runs: ``"transfer"`` and ``"scratch"`` -> :class:`RunHistory`.
        sizes: Images in the train / val / test splits.
        source: Where the data came from.
        created: ISO timestamp.
        stopped: True when the user stopped it early.
        finished: True once both test accuracies are in.
    """

    config: dict
    runs: dict[str, RunHistory]
    sizes: dict[str, int] = field(default_factory=dict)
    source: str = ""
    created: str = ""
    stopped: bool = False
    finished: bool = False
    path: str | None = None

    @property
    def progress(self) -> float:
        """Fraction of the planned epochs (of both runs) completed, in [0, 1]."""
        total = 2 * max(1, int(self.config.get("epochs", 1)))
        return min(1.0, sum(r.epochs_done for r in self.runs.values()) / total)

    def title(self) -> str:
        """A short label: task, training size, epochs, fine-tuning, test accuracies."""
        c = self.config
        size = "all" if c.get("train_size") is None else c["train_size"]
        done = {r.epochs_done for r in self.runs.values()}
        ep = (f"{max(done)} ep" if len(done) == 1 else
              f"{self.runs['transfer'].epochs_done}/{self.runs['scratch'].epochs_done} ep")
        s = (f"{c.get('task')}, {size} train images ({self.sizes.get('train', '?')}), {ep}"
             + (", fine-tune" if c.get("fine_tune") else ""))
        if self.finished:
            s += (f": transfer {self.runs['transfer'].test_accuracy:.1%} vs scratch "
                  f"{self.runs['scratch'].test_accuracy:.1%}")
        return s + (" (stopped)" if self.stopped else "")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("path", None)
        d["format"] = "vizcore-transfer-run/1"
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Comparison:
        if d.get("format") != "vizcore-transfer-run/1":
            raise ValueError("not a vizcore transfer run (format field missing or unknown)")
        runs = {k: RunHistory(**v) for k, v in d["runs"].items()}
        keep = {f.name for f in dataclasses.fields(cls)} - {"runs", "path"}
        return cls(runs=runs, **{k: v for k, v in d.items() if k in keep})


def save_comparison(comp: Comparison, runs_dir: str | Path = USER_RUNS_DIR) -> Path:
    """Write ``comp`` as JSON (config, per-epoch history, test accuracies) into ``runs_dir``
    under a unique, time-stamped name; sets ``comp.path``."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    c = comp.config
    stamp = (comp.created or datetime.now().isoformat(timespec="seconds")).replace(":", "")
    base = f"transfer_{stamp}_{c.get('task')}_{c.get('train_size') or 'all'}"
    path = runs_dir / f"{base}.json"
    i = 1
    while path.exists():
        path = runs_dir / f"{base}_{i}.json"
        i += 1
    path.write_text(json.dumps(comp.to_dict(), indent=1))
    comp.path = str(path)
    return path


def load_comparison(path: str | Path) -> Comparison:
    """Read a run written by :func:`save_comparison`.

    Raises:
        ValueError: the file is not a vizcore transfer run.
    """
    try:
        comp = Comparison.from_dict(json.loads(Path(path).read_text()))
    except (json.JSONDecodeError, TypeError, KeyError) as exc:
        raise ValueError(f"{path} is not a vizcore transfer run ({exc})") from exc
    comp.path = str(path)
    return comp


def list_comparisons(dirs: Sequence[str | Path] = (SHIPPED_RUNS_DIR, USER_RUNS_DIR)
                     ) -> list[Comparison]:
    """Every readable saved comparison in ``dirs``, newest first (broken files are skipped)."""
    found = []
    for d in dirs:
        for p in sorted(Path(d).glob("transfer_*.json")) if Path(d).is_dir() else []:
            try:
                found.append(load_comparison(p))
            except ValueError:
                continue
    return sorted(found, key=lambda c: c.created, reverse=True)


# --------------------------------------------------------------------------- training


def _stop_fn(should_stop: StopFlag) -> Callable[[], bool]:
    if should_stop is None:
        return lambda: False
    if isinstance(should_stop, threading.Event):
        return should_stop.is_set
    return should_stop


def _count(weights) -> int:
    return int(sum(int(np.prod(w.shape)) for w in weights))


def run_comparison(task: TaskData, config: TransferConfig, source, *, on_epoch: OnEpoch = None,
                   on_batch: OnBatch = None, should_stop: StopFlag = None) -> Comparison:
    """Train the transfer model and the scratch model on ``task`` with the same budget.

    Epochs alternate (transfer epoch 1, scratch epoch 1, transfer epoch 2, ...) so live curves
    of both grow together. Each run gets the same training subset, head initialisation,
    optimiser (Adam), learning rate, batch size and epochs.

    Args:
        task: The data (already in ``source``'s input range); its training set is cut to
            ``config.train_size``.
        config: What to train.
        source: The trained functional model whose convolutional base is transferred; only read.
        on_epoch: Called as ``on_epoch(comparison, kind, epoch)`` after every epoch of either
            run; ``comparison`` is the object being filled (and finally returned).
        on_batch: Called as ``on_batch(comparison, fraction)`` after every batch, with the
            fraction of all planned batches of both runs done (for a progress bar).
        should_stop: A ``threading.Event`` or a callable, checked after every batch; when set,
            training stops, the unfinished epoch is dropped and both models are evaluated.

    If a callback raises (a UI interrupting the run, for instance), the comparison is marked
    ``stopped``, both models are evaluated on the test set, and the exception propagates; the
    caller that kept the object from a callback holds the finished, stopped comparison.

    Returns:
        The finished :class:`Comparison` (``stopped`` when cut short).

    Cost: ``epochs`` forward+backward passes over the training set per model, one forward pass
    over the validation set per epoch and model, one over the test set per model.
    """
    import keras

    stop = _stop_fn(should_stop)
    data = task.limit_train(config.train_size, config.seed)
    comp = Comparison(dataclasses.asdict(config),
                      {k: RunHistory(k) for k in RUN_KINDS},
                      {"train": len(data.y_train), "val": len(data.y_val),
                       "test": len(data.y_test)},
                      data.source, datetime.now().isoformat(timespec="seconds"))
    models = {}
    for kind in RUN_KINDS:
        m = build_model(source, task.num_classes, pretrained=kind == "transfer",
                        fine_tune=config.fine_tune, head_units=config.head_units,
                        pooling=config.pooling, seed=config.seed)
        m.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        comp.runs[kind].trainable_params = _count(m.trainable_weights)
        comp.runs[kind].frozen_params = _count(m.non_trainable_weights)
        models[kind] = m
    steps = int(np.ceil(len(data.y_train) / config.batch_size))
    total = 2 * config.epochs * steps

    def progress_from(done_before: int):
        if on_batch is None:
            return None
        return lambda b: on_batch(comp, min(1.0, (done_before + b + 1) / total))

    def evaluate() -> None:
        for kind in RUN_KINDS:
            loss, acc = models[kind].evaluate(data.x_test, data.y_test, batch_size=256,
                                              verbose=0)
            comp.runs[kind].test_loss, comp.runs[kind].test_accuracy = float(loss), float(acc)
        comp.finished = True

    try:
        for epoch in range(config.epochs):
            for kind in RUN_KINDS:
                if stop():
                    comp.stopped = True
                    break
                done = sum(r.epochs_done for r in comp.runs.values()) * steps
                cb = batch_callback(progress_from(done), stop)
                t0 = time.perf_counter()
                h = models[kind].fit(data.x_train, data.y_train, batch_size=config.batch_size,
                                     epochs=1, validation_data=(data.x_val, data.y_val),
                                     shuffle=True, verbose=0, callbacks=[cb])
                if cb.stopped:
                    comp.stopped = True
                    break
                run = comp.runs[kind]
                run.epoch_seconds.append(round(time.perf_counter() - t0, 4))
                for m in METRICS:
                    run.history[m].append(float(h.history[m][-1]))
                if on_epoch is not None:
                    on_epoch(comp, kind, epoch)
            if comp.stopped:
                break
    except BaseException:
        comp.stopped = True
        evaluate()
        raise
    evaluate()
    return comp
