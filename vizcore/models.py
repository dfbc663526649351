"""Model registry: the shipped Fashion-MNIST models, VGG16 (weight discovery) and user uploads.

Every model is returned as a :class:`ModelInfo` that wraps a *functional* Keras model (a
``keras.Sequential`` is rebuilt as ``keras.Model(seq.inputs, seq.outputs)`` once, on load, because
tf-keras-vis needs functional models). The wrapped model is shared and must never be mutated:
methods that need a changed copy (linear head, randomised weights) build and cache their own.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vizcore.data import ASSETS, FASHION_CLASSES, DataUnavailable, _download

MODELS_DIR = ASSETS / "models"
IMAGENET_CLASSES_FILE = ASSETS / "imagenet_classes.json"
VGG16_FILENAME = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
VGG16_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
             + VGG16_FILENAME)
VGG16_ENV = "VIZCORE_VGG16_WEIGHTS"
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)

#: Input scalings a user can choose for an uploaded model, with a description.
SCALINGS = {
    "0..1": "pixels / 255 (most Keras tutorials)",
    "-1..1": "pixels / 127.5 - 1 (MobileNet, Inception, ResNet v2)",
    "caffe": "RGB->BGR, minus the ImageNet mean, no scaling (VGG16/VGG19, ResNet50)",
    "none": "raw 0..255 values (the model rescales inside)",
}

BUILTIN = {
    "fashion_vgg": ("vgg_small", "Fashion-MNIST CNN (VGG-style, fc1/fc2 head)"),
    "fashion_gap": ("gap_cnn", "Fashion-MNIST GAP CNN (CAM-ready)"),
}


class ModelLoadError(ValueError):
    """A model file cannot be used; the message names the cause and the fix."""


@dataclass(eq=False)
class ModelInfo:
    """A loaded model with what the app needs to feed and read it.

    Attributes:
        key: Registry key (``"fashion_vgg"``, ``"vgg16"``, ``"upload:<name>"`` ...).
        label: Human-readable name.
        model: The functional Keras model (shared; never mutate).
        scaling: One of :data:`SCALINGS`.
        class_names: One name per output unit.
        card: Model card (data, epochs, accuracy, command, notes).
        kind: ``"builtin"``, ``"vgg16"``, ``"vgg16-random"`` or ``"upload"``.
        outputs_probabilities: True when the last layer already applies softmax.
    """

    key: str
    label: str
    model: object
    scaling: str
    class_names: list[str]
    card: dict = field(default_factory=dict)
    kind: str = "builtin"
    outputs_probabilities: bool = True
    _forward: object = field(default=None, repr=False)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the model input."""
        return tuple(int(d) for d in self.model.inputs[0].shape[1:])

    @property
    def num_classes(self) -> int:
        return int(self.model.outputs[0].shape[-1])

    @property
    def is_grayscale_28(self) -> bool:
        return self.input_shape == (28, 28, 1)

    def preprocess(self, raw: np.ndarray) -> np.ndarray:
        """uint8 image(s) (..., H, W, C) -> float32 in the model's input range."""
        return scale_pixels(raw, self.scaling)

    def deprocess(self, x: np.ndarray) -> np.ndarray:
        """Model-range float32 image(s) -> uint8 for display."""
        return unscale_pixels(x, self.scaling)

    def forward(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Class probabilities (N, K) for a float32 batch in model range, batched, compiled."""
        import tensorflow as tf

        if self._forward is None:
            model, probs = self.model, self.outputs_probabilities
            spec = tf.TensorSpec([None, *self.input_shape], tf.float32)

            @tf.function(input_signature=[spec])
            def fwd(t):
                y = model(t, training=False)
                return y if probs else tf.nn.softmax(y, axis=-1)

            self._forward = fwd
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        out = [self._forward(x[i : i + batch_size]).numpy() for i in range(0, len(x), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.num_classes), np.float32)

    def predict_raw(self, raw: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Probabilities for uint8 image(s) at the model's input size."""
        raw = np.asarray(raw)
        return self.forward(self.preprocess(raw[None] if raw.ndim == 3 else raw), batch_size)

    def top_k(self, probs: np.ndarray, k: int = 5) -> list[tuple[int, str, float]]:
        """The k most probable classes of one probability vector as (index, name, p)."""
        order = np.argsort(probs)[::-1][:k]
        return [(int(i), self.class_names[i], float(probs[i])) for i in order]

    def layers_of(self, kinds: Sequence[str]) -> list[str]:
        """Names of the layers whose class name is in ``kinds``, input to output."""
        return [lyr.name for lyr in self.model.layers if type(lyr).__name__ in kinds]

    def conv_layers(self) -> list[str]:
        return self.layers_of(("Conv2D", "DepthwiseConv2D", "SeparableConv2D"))

    def dense_layers(self) -> list[str]:
        return self.layers_of(("Dense",))


# --------------------------------------------------------------------------- scaling


def scale_pixels(raw: np.ndarray, scaling: str) -> np.ndarray:
    """uint8 RGB/gray pixels -> float32 model input for the given scaling."""
    x = np.asarray(raw, dtype=np.float32)
    if scaling == "0..1":
        return x / 255.0
    if scaling == "-1..1":
        return x / 127.5 - 1.0
    if scaling == "caffe":
        if x.shape[-1] != 3:
            raise ValueError("caffe scaling needs RGB images")
        return x[..., ::-1] - CAFFE_MEAN_BGR
    if scaling == "none":
        return x
    raise ValueError(f"unknown scaling {scaling!r}; choose one of {list(SCALINGS)}")


def unscale_pixels(x: np.ndarray, scaling: str) -> np.ndarray:
    """Inverse of :func:`scale_pixels`, clipped to uint8."""
    x = np.asarray(x, dtype=np.float32)
    if scaling == "0..1":
        y = x * 255.0
    elif scaling == "-1..1":
        y = (x + 1.0) * 127.5
    elif scaling == "caffe":
        y = (x + CAFFE_MEAN_BGR)[..., ::-1]
    else:
        y = x
    return np.clip(np.round(y), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- helpers


def as_functional(model):
    """Return ``model`` as a functional model (a Sequential is rebuilt over the same layers)."""
    import keras

    if isinstance(model, keras.Sequential):
        if not model.inputs:
            raise ModelLoadError("The Sequential model has no defined input shape. Fix: add a "
                                 "keras.Input(shape=...) as its first layer and save it again.")
        return keras.Model(model.inputs, model.outputs, name=model.name)
    return model


def _last_activation_is_softmax(model) -> bool:
    last = model.layers[-1]
    act = getattr(last, "activation", None)
    name = getattr(act, "__name__", "") if act is not None else ""
    return name == "softmax" or type(last).__name__ == "Softmax"


def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet class names in Keras's (sorted WordNet id) order, shipped offline."""
    return [name for _, name in json.loads(IMAGENET_CLASSES_FILE.read_text())]


# --------------------------------------------------------------------------- builtin models


def load_builtin(key: str = "fashion_vgg", models_dir: Path = MODELS_DIR) -> ModelInfo:
    """Load one of the shipped Fashion-MNIST models with its model card."""
    import keras

    if key not in BUILTIN:
        raise KeyError(f"unknown built-in model {key!r}; choose one of {sorted(BUILTIN)}")
    arch, label = BUILTIN[key]
    path = models_dir / f"{arch}.keras"
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing. Fix: `python -m vizcore train --arch {arch}`.")
    model = as_functional(keras.saving.load_model(path, compile=False, safe_mode=True))
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    card.pop("history", None)
    return ModelInfo(key, label, model, "0..1", list(FASHION_CLASSES), card, "builtin",
                     _last_activation_is_softmax(model))


# --------------------------------------------------------------------------- VGG16


def vgg16_weight_candidates() -> list[Path]:
    """Where VGG16 ImageNet weights are looked for, in order: ``$VIZCORE_VGG16_WEIGHTS``, then
    the Keras cache (``~/.keras/models/vgg16_weights_tf_dim_ordering_tf_kernels.h5``)."""
    out = []
    if os.environ.get(VGG16_ENV):
        out.append(Path(os.environ[VGG16_ENV]).expanduser())
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    out.append(keras_home / "models" / VGG16_FILENAME)
    return out


def find_vgg16_weights() -> Path | None:
    """The first existing VGG16 weight file of :func:`vgg16_weight_candidates`, or None."""
    return next((p for p in vgg16_weight_candidates() if p.is_file()), None)


def download_vgg16_weights(timeout: float = 10.0) -> Path:
    """Fetch VGG16 ImageNet weights (528 MB) into the Keras cache, as Keras itself would.

    Raises:
        DataUnavailable: offline; the message says where to put the file instead.
    """
    dest = vgg16_weight_candidates()[-1]
    try:
        return _download(VGG16_URL, dest, timeout)
    except DataUnavailable as exc:
        raise DataUnavailable(f"{exc}. {vgg16_missing_message()}") from exc


def vgg16_missing_message() -> str:
    places = " or ".join(f"`{p}`" for p in vgg16_weight_candidates())
    return (f"VGG16 ImageNet weights were not found. Put `{VGG16_FILENAME}` (528 MB, from "
            f"{VGG16_URL}) at {places}, or set the environment variable {VGG16_ENV} to its path, "
            f"then reload.")


def load_vgg16(weights: str | Path | None = "auto") -> ModelInfo:
    """VGG16 (Simonyan and Zisserman 2014, arXiv:1409.1556) with its ImageNet head.

    Args:
        weights: ``"auto"`` (found weights, else an error), a path to the .h5 file, or
            ``"random"`` for the architecture with random weights (clearly labelled).

    Raises:
        DataUnavailable: ``"auto"`` and no weight file was found.
    """
    import keras

    if weights == "random":
        keras.utils.set_random_seed(0)
        model = keras.applications.VGG16(weights=None)
        return ModelInfo("vgg16-random", "VGG16, random weights (architecture only)", model,
                         "caffe", imagenet_class_names(),
                         {"data": "none: random initial weights, predictions are meaningless",
                          "use": "architecture, shapes, timing; not explanations of a trained "
                                 "model"},
                         "vgg16-random", True)
    path = find_vgg16_weights() if weights == "auto" else Path(weights)
    if path is None or not path.is_file():
        raise DataUnavailable(vgg16_missing_message())
    try:
        model = keras.applications.VGG16(weights=str(path))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path} is not a usable VGG16 weight file ({exc}). Fix: download "
                             f"{VGG16_URL} again.") from exc
    return ModelInfo("vgg16", "VGG16 (ImageNet)", model, "caffe", imagenet_class_names(),
                     {"data": "ImageNet ILSVRC-2012, 1.28 M images, 1,000 classes",
                      "weights": str(path), "top-5 accuracy": "0.901 (Keras documentation)",
                      "input": "224x224 RGB, caffe preprocessing"},
                     "vgg16", True)


# --------------------------------------------------------------------------- user models


def _walk_layers(config) -> list[dict]:
    """All layer configs in a (possibly nested) Keras model config."""
    found = []
    if isinstance(config, dict):
        if "class_name" in config and isinstance(config.get("config"), dict):
            found.append(config)
        for v in config.values():
            found.extend(_walk_layers(v))
    elif isinstance(config, list):
        for v in config:
            found.extend(_walk_layers(v))
    return found


def inspect_model_config(config: dict) -> None:
    """Refuse configs that would need to run code: Lambda layers and custom objects.

    Raises:
        ModelLoadError: naming the offending layer and the fix.
    """
    for item in _walk_layers(config):
        cls = item["class_name"]
        name = item.get("config", {}).get("name", "?")
        module = item.get("module") or ""
        registered = item.get("registered_name") or ""
        if cls == "Lambda":
            raise ModelLoadError(
                f"The model contains a Lambda layer ('{name}'), which would run arbitrary Python "
                "code when loaded, so vizcore refuses it. Fix: replace the Lambda with built-in "
                "layers (for example Rescaling, Activation) and save the model again.")
        custom = (module and not module.startswith("keras")) or (
            registered and "/" in registered and not registered.startswith("keras"))
        if custom:
            raise ModelLoadError(
                f"Layer or object '{name}' is a custom class ({registered or module}.{cls}) that "
                "needs your own Python code to load, which vizcore does not run. Fix: rebuild "
                "the model from built-in Keras layers, or export it without custom objects.")


def read_model_config(path: Path) -> dict:
    """Read the architecture config of a .keras or .h5 file without building the model."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            if "config.json" not in zf.namelist():
                raise ModelLoadError("This zip file is not a Keras model (no config.json). "
                                     "Fix: save the model with model.save('model.keras').")
            return json.loads(zf.read("config.json"))
    with open(path, "rb") as fh:
        magic = fh.read(8)
    if magic == b"\x89HDF\r\n\x1a\n":
        import h5py

        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            if raw is None:
                raise ModelLoadError(
                    "This .h5 file holds weights only, not a model. Fix: save the whole model "
                    "with model.save('model.keras') (or model.save('model.h5')).")
            return json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    raise ModelLoadError("This file is not a Keras model (.keras zip or HDF5 .h5). Fix: save "
                         "your model with model.save('model.keras') and upload that file.")


def validate_image_classifier(model) -> None:
    """Check one image input (H, W, 1|3) and one class-score output (N, K>=2)."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelLoadError(f"The model has {len(model.inputs)} inputs and "
                             f"{len(model.outputs)} outputs; vizcore needs one image input and "
                             "one class output.")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[-1] not in (1, 3) or None in shape[1:3]:
        raise ModelLoadError(
            f"The model's input has shape {shape}, which is not an image of fixed size "
            "(batch, height, width, 1 or 3 channels). Fix: give the model an input like "
            "keras.Input((224, 224, 3)).")
    if min(shape[1:3]) < 8:
        raise ModelLoadError(f"The model's input {shape[1]}x{shape[2]} is too small to show.")
    out = tuple(model.outputs[0].shape)
    if len(out) != 2 or out[-1] < 2:
        raise ModelLoadError(f"The model's output has shape {out}; vizcore needs class scores "
                             "of shape (batch, classes) with at least two classes.")


def guess_scaling(model) -> str:
    """``"none"`` when the model rescales its own input, else ``"0..1"``."""
    kinds = {type(lyr).__name__ for lyr in model.layers[:4]}
    return "none" if kinds & {"Rescaling", "Normalization"} else "0..1"


def load_user_model(data: bytes, filename: str, scaling: str | None = None,
                    class_names: Sequence[str] | None = None) -> ModelInfo:
    """Load an uploaded ``.keras``/``.h5`` model without running any of its code.

    The config is inspected first (Lambda layers and custom objects are refused), then Keras loads
    it with ``safe_mode=True`` and ``compile=False``.

    Args:
        data: The file's bytes.
        filename: Original name (for the extension and the label).
        scaling: One of :data:`SCALINGS`; None guesses (see :func:`guess_scaling`).
        class_names: Optional names; default ImageNet names for 1,000 outputs, else "class i".

    Raises:
        ModelLoadError: with the cause and the fix.
    """
    import keras

    suffix = Path(filename).suffix.lower()
    if suffix not in (".keras", ".h5", ".hdf5"):
        raise ModelLoadError(f"'{filename}' is not a Keras model file. Fix: upload a .keras "
                             "(Keras 3) or .h5 file saved with model.save().")
    if not data:
        raise ModelLoadError("The uploaded model file is empty.")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"model{suffix}"
        path.write_bytes(data)
        inspect_model_config(read_model_config(path))
        try:
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:  # Keras raises many types for bad files
            raise ModelLoadError(f"Keras could not load '{filename}': {type(exc).__name__}: "
                                 f"{str(exc)[:300]}. Fix: check that it was saved with "
                                 "model.save() by Keras 3 and uses only built-in layers.") from exc
    if not isinstance(model, keras.Model):
        raise ModelLoadError(f"'{filename}' does not hold a Keras model.")
    model = as_functional(model)
    validate_image_classifier(model)
    k = int(model.outputs[0].shape[-1])
    if class_names is None or len(class_names) != k:
        class_names = imagenet_class_names() if k == 1000 else [f"class {i}" for i in range(k)]
    chosen = scaling or guess_scaling(model)
    if chosen not in SCALINGS:
        raise ModelLoadError(f"Unknown input scaling {chosen!r}; choose one of {list(SCALINGS)}.")
    return ModelInfo(f"upload:{filename}", f"Your model: {filename}", model, chosen,
                     list(class_names), {"file": filename, "parameters": model.count_params()},
                     "upload", _last_activation_is_softmax(model))
