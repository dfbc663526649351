"""Model registry: the shipped Fashion-MNIST models, VGG16 (weight discovery) and user uploads.

Every model is returned as a :class:`ModelInfo` that wraps one *flat functional* Keras model:
whatever its origin (``Sequential``, nested transfer-learning models, ``keras.applications``), it
is normalised once, when the ``ModelInfo`` is made, by :func:`vizcore.graph.normalise`, and every
structural question goes to :func:`vizcore.graph.graph_of`. The wrapped model is shared and must
never be mutated: methods that need a changed copy (randomised weights) build and cache their own.
Uploads are keyed by the content hash of the file (plus the scaling and the class names), never
by the file's name.
"""

from __future__ import annotations

import hashlib
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
        key: Registry key (``"fashion_vgg"``, ``"vgg16"``, ``"upload:<content hash>"`` ...).
        label: Human-readable name.
        model: The functional Keras model (shared; never mutate).
        scaling: One of :data:`SCALINGS`.
        class_names: One name per output unit.
        card: Model card (data, epochs, accuracy, command, notes).
        kind: ``"builtin"``, ``"vgg16"``, ``"vgg16-random"`` or ``"upload"``.
        outputs_probabilities: True when the last layer already applies softmax (None: read
            it off the graph).
    """

    key: str
    label: str
    model: object
    scaling: str
    class_names: list[str]
    card: dict = field(default_factory=dict)
    kind: str = "builtin"
    outputs_probabilities: bool | None = None

    def __post_init__(self) -> None:
        from vizcore.graph import graph_of, normalise

        if self.model is None:  # a placeholder (tests, type-only use)
            return
        self.model = normalise(self.model)
        if self.outputs_probabilities is None:
            self.outputs_probabilities = graph_of(self.model).outputs_probabilities()

    @property
    def graph(self):
        """The :class:`vizcore.graph.Graph` of the model (cached per model)."""
        from vizcore.graph import graph_of

        return graph_of(self.model)

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
        from vizcore.engine import get_engine

        return get_engine(self).probabilities(x, batch_size)

    def predict_raw(self, raw: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Probabilities for uint8 image(s) at the model's input size."""
        raw = np.asarray(raw)
        return self.forward(self.preprocess(raw[None] if raw.ndim == 3 else raw), batch_size)

    def top_k(self, probs: np.ndarray, k: int = 5) -> list[tuple[int, str, float]]:
        """The k most probable classes of one probability vector as (index, name, p)."""
        order = np.argsort(probs)[::-1][:k]
        return [(int(i), self.class_names[i], float(probs[i])) for i in order]

    def layers_of(self, kinds: Sequence[str]) -> list[str]:
        """Names of the layers whose class name is in ``kinds``, input to output (layers of
        nested models included: the model is flat)."""
        return self.graph.layers(kinds)

    def conv_layers(self) -> list[str]:
        """Convolutions with feature-map outputs, input to output."""
        return self.graph.conv_layers()

    def cam_layers(self) -> list[str]:
        """Layers a CAM can read (convolutions, activations, merges), input to output."""
        return self.graph.cam_layers()

    def cam_layer(self) -> str | None:
        """The default CAM layer: the output of the last conv block."""
        return self.graph.cam_layer()

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


def input_bounds(scaling: str, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest model-range value of each input channel for ``scaling``, (C,) each
    (the input-range table: black and white pixels through :func:`scale_pixels`)."""
    lo = scale_pixels(np.zeros((1, 1, channels), np.uint8), scaling).reshape(-1)
    hi = scale_pixels(np.full((1, 1, channels), 255, np.uint8), scaling).reshape(-1)
    return np.minimum(lo, hi).astype(np.float32), np.maximum(lo, hi).astype(np.float32)


def input_range(scaling: str) -> tuple[float, float]:
    """(low, high) of the model input over all channels for ``scaling``."""
    lo, hi = input_bounds(scaling, 3 if scaling == "caffe" else 1)
    return float(lo.min()), float(hi.max())


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


def as_functional(model, input_size: tuple[int, int] | None = None):
    """``model`` as one flat functional graph (see :func:`vizcore.graph.normalise`).

    Raises:
        ModelLoadError: the model has no graph (subclassed) or no input shape.
    """
    from vizcore.graph import GraphError, normalise

    try:
        return normalise(model, input_size)
    except GraphError as exc:
        raise ModelLoadError(f"{str(exc)[:1].upper()}{str(exc)[1:]}.") from exc


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
    return ModelInfo(key, label, model, "0..1", list(FASHION_CLASSES), card, "builtin")


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


#: Input scalings of ``keras.applications`` families, by the prefix of the base model's name
#: (a transfer model nests the base under that name), for :func:`guess_scaling`.
_APP_SCALINGS = (
    ("mobilenet", "-1..1"), ("inception", "-1..1"), ("xception", "-1..1"),
    ("nasnet", "-1..1"), ("resnet50v2", "-1..1"), ("resnet101v2", "-1..1"),
    ("resnet152v2", "-1..1"), ("vgg", "caffe"), ("resnet", "caffe"),
)


def guess_scaling(model, nested: Sequence[str] = ()) -> str:
    """The likely input scaling: ``"none"`` when the model rescales its own input (a
    ``Rescaling`` or ``Normalization`` among its first layers, nested ones included), else the
    scaling of a nested ``keras.applications`` base named in ``nested`` (``-1..1`` for
    MobileNet/Inception/Xception, ``caffe`` for VGG/ResNet), else ``"0..1"``. A guess: the
    page says so and lets the user change it."""
    from vizcore.graph import graph_of

    kinds = {n.kind for n in graph_of(model).nodes[:5]}
    if kinds & {"Rescaling", "Normalization"}:
        return "none"
    for name in nested:
        for prefix, scaling in _APP_SCALINGS:
            if name.lower().startswith(prefix):
                return scaling
    return "0..1"


#: Input size used for a model that accepts any size, unless the user picks another.
DEFAULT_FLEXIBLE_SIZE = (224, 224)


def flexible_input(model) -> bool:
    """True when the model's input has an unknown height or width (``(None, None, C)``)."""
    shape = tuple(model.inputs[0].shape) if getattr(model, "inputs", None) else ()
    return len(shape) == 4 and (shape[1] is None or shape[2] is None)


def parse_class_names(data: bytes | str, filename: str = "names.txt") -> list[str]:
    """Class names from a ``.txt`` (one per line) or ``.json`` file (a list of names, or a
    mapping from index to name as Keras's ``imagenet_class_index.json`` has it).

    Raises:
        ModelLoadError: not text, or JSON of another shape.
    """
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise ModelLoadError(f"'{filename}' is not a text file. Fix: upload a .txt with one class "
                             "name per line, or a .json list.") from None
    if filename.lower().endswith(".json"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelLoadError(f"'{filename}' is not valid JSON ({exc.msg}, line {exc.lineno})."
                                 ) from None
        if isinstance(obj, dict):
            try:
                items = sorted(obj.items(), key=lambda kv: int(kv[0]))
            except ValueError:
                raise ModelLoadError(f"'{filename}': the keys of a JSON mapping must be class "
                                     "indices (0, 1, ...).") from None
            obj = [v[-1] if isinstance(v, list) else v for _, v in items]
        if not isinstance(obj, list):
            raise ModelLoadError(f"'{filename}' must hold a JSON list of class names.")
        return [str(v).strip() for v in obj]
    return [line.strip() for line in text.splitlines() if line.strip()]


def content_digest(data: bytes) -> str:
    """The content hash of an uploaded file (16 hex digits of its SHA-256)."""
    return hashlib.sha256(data).hexdigest()[:16]


def upload_key(digest: str, scaling: str, class_names: Sequence[str] | None,
               input_size: tuple[int, int] | None = None) -> str:
    """The registry key of an upload: a hash of the file's content digest (see
    :func:`content_digest`), the scaling, the class names and a chosen input size, so that two
    files both called ``model.keras`` never share cached results."""
    h = hashlib.sha256(repr((digest, scaling, list(class_names or []), input_size)).encode())
    return f"upload:{h.hexdigest()[:20]}"


def load_user_model(data: bytes, filename: str, scaling: str | None = None,
                    class_names: Sequence[str] | None = None,
                    input_size: tuple[int, int] | None = None,
                    digest: str | None = None) -> ModelInfo:
    """Load an uploaded ``.keras``/``.h5`` model without running any of its code.

    The config is inspected first (Lambda layers and custom objects are refused), then Keras loads
    it with ``safe_mode=True`` and ``compile=False``, then it is normalised into one flat
    functional graph (Sequential, nested models).

    Args:
        data: The file's bytes.
        filename: Original name (for the extension and the label).
        scaling: One of :data:`SCALINGS`; None guesses (see :func:`guess_scaling`).
        class_names: Optional names, one per output; default ImageNet names for 1,000 outputs,
            else "class i".
        input_size: (H, W) for a model whose input size is unknown (``shape=(None, None, 3)``);
            default :data:`DEFAULT_FLEXIBLE_SIZE`. Ignored for fixed-size models.
        digest: :func:`content_digest` of ``data`` when the caller has it already.

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
    flexible = flexible_input(model)
    nested = [lyr.name for lyr in model.layers if isinstance(lyr, keras.Model)]
    size = (tuple(int(v) for v in input_size) if input_size else DEFAULT_FLEXIBLE_SIZE) \
        if flexible else None
    if size is not None and not (8 <= min(size) and max(size) <= 1024):
        raise ModelLoadError(f"Input size {size[0]}x{size[1]} is outside 8..1024 pixels.")
    try:
        model = as_functional(model, size)
    except ModelLoadError:
        raise
    except Exception as exc:  # a layer that cannot be rebuilt at this size
        raise ModelLoadError(f"'{filename}' could not be prepared: {type(exc).__name__}: "
                             f"{str(exc)[:300]}.") from exc
    validate_image_classifier(model)
    k = int(model.outputs[0].shape[-1])
    if class_names:
        if len(class_names) != k:
            raise ModelLoadError(f"You gave {len(class_names)} class names, but the model has "
                                 f"{k} outputs. Fix: give exactly one name per output, in the "
                                 "order of the outputs.")
    else:
        class_names = imagenet_class_names() if k == 1000 else [f"class {i}" for i in range(k)]
    chosen = scaling or guess_scaling(model, nested)
    if chosen not in SCALINGS:
        raise ModelLoadError(f"Unknown input scaling {chosen!r}; choose one of {list(SCALINGS)}.")
    digest = digest or content_digest(data)
    card = {"file": filename, "sha256": digest,
            "parameters": model.count_params()}
    if nested:
        card["nested models (their layers are shown inline)"] = ", ".join(nested)
    if flexible:
        card["input size"] = (f"{size[0]}x{size[1]}, chosen (the model accepts any size)")
    return ModelInfo(upload_key(digest, chosen, class_names, size), f"Your model: {filename}",
                     model, chosen, list(class_names), card, "upload")


#: Readable names of model-card fields (others are shown with their key, capitalised).
CARD_LABELS = {"name": "Name", "architecture": "Architecture", "data": "Trained on",
               "input": "Input", "epochs": "Epochs", "batch_size": "Batch size",
               "augmentation": "Augmentation", "optimizer": "Optimizer", "seed": "Seed",
               "test_accuracy": "Test accuracy", "parameters": "Parameters",
               "train_seconds": "Training time", "file": "File", "sha256": "SHA-256",
               "command": "Command", "notes": "Notes"}


def _card_value(key: str, value) -> str:
    if key.endswith("accuracy") and isinstance(value, float) and 0 <= value <= 1:
        return f"{value:.1%}"
    if key.endswith("seconds") and isinstance(value, (int, float)):
        m, s = divmod(int(round(value)), 60)
        h, m = divmod(m, 60)
        return f"{h} h {m} min" if h else f"{m} min {s} s"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def card_rows(card: dict) -> list[tuple[str, str]]:
    """A model card as (label, readable value) rows, known fields first (no training
    history: it is a figure, not a table row)."""
    keys = [k for k in CARD_LABELS if k in card] + [k for k in card if k not in CARD_LABELS]
    return [(CARD_LABELS.get(k, k[:1].upper() + k[1:].replace("_", " ")), _card_value(k, card[k]))
            for k in keys if k != "history"]
