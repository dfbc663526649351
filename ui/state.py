"""Session state and cached loaders: the only place pages get the model and the input from."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import streamlit as st

from vizcore import data, models

MODEL_KEY = "vz_model_key"
INPUT_KEY = "vz_input"
UPLOADS_KEY = "vz_uploaded_models"
INVERT_KEY = "vz_invert"
DEFAULT_MODEL = "fashion_vgg"


# --------------------------------------------------------------------------- cached loaders


@st.cache_resource(show_spinner="Loading the model (once per server)...")
def load_model(key: str) -> models.ModelInfo:
    """A built-in model or VGG16, loaded once per process and shared by all sessions."""
    if key in models.BUILTIN:
        return models.load_builtin(key)
    if key == "vgg16":
        return models.load_vgg16("auto")
    if key == "vgg16-random":
        return models.load_vgg16("random")
    raise KeyError(key)


@st.cache_resource(show_spinner="Checking your model file...", max_entries=8)
def load_upload(digest: str, _data: bytes, filename: str, scaling: str | None,
                class_names: tuple[str, ...] | None) -> models.ModelInfo:
    """A user's model, keyed by its content hash (so re-uploading the same file is free)."""
    return models.load_user_model(_data, filename, scaling,
                                  list(class_names) if class_names else None)


@st.cache_data(show_spinner="Loading the dataset...", max_entries=8)
def load_dataset(name: str) -> data.Dataset:
    return data.load_dataset(name)


@st.cache_data(show_spinner=False, max_entries=4)
def vgg16_weights_path() -> str | None:
    found = models.find_vgg16_weights()
    return str(found) if found else None


# --------------------------------------------------------------------------- models


def model_options() -> dict[str, str]:
    """Model choices: key -> label (VGG16 only when its weights are on this machine)."""
    opts = {k: label for k, (_, label) in models.BUILTIN.items()}
    if vgg16_weights_path():
        opts["vgg16"] = "VGG16 (ImageNet weights)"
    opts["vgg16-random"] = "VGG16, random weights (architecture only)"
    for key, info in st.session_state.get(UPLOADS_KEY, {}).items():
        opts[key] = info.label
    return opts


def current_model() -> models.ModelInfo:
    """The model the user picked (the default CNN until they pick another)."""
    key = st.session_state.get(MODEL_KEY, DEFAULT_MODEL)
    uploads = st.session_state.get(UPLOADS_KEY, {})
    if key in uploads:
        return uploads[key]
    try:
        return load_model(key)
    except Exception as exc:  # a missing file must not take the app down
        st.error(f"Could not load {key}: {exc}. Falling back to the default model.")
        st.session_state[MODEL_KEY] = DEFAULT_MODEL
        return load_model(DEFAULT_MODEL)


def set_model(key: str) -> None:
    st.session_state[MODEL_KEY] = key


def add_upload(data_bytes: bytes, filename: str, scaling: str | None,
               class_names: list[str] | None) -> models.ModelInfo:
    """Load and register an uploaded model, then select it. Raises ModelLoadError."""
    digest = hashlib.sha256(data_bytes).hexdigest()[:16]
    info = load_upload(digest, data_bytes, filename, scaling,
                       tuple(class_names) if class_names else None)
    st.session_state.setdefault(UPLOADS_KEY, {})[info.key] = info
    set_model(info.key)
    return info


def model_picker(container=st.sidebar) -> models.ModelInfo:
    """A selectbox bound to the session's model choice.

    The choice lives in ``MODEL_KEY``; the widget is re-synced to it before it is drawn, so a
    model selected by code (an upload on the Home page) shows up here too, and a user's pick goes
    through the on_change callback.
    """
    opts = model_options()
    key = st.session_state.get(MODEL_KEY, DEFAULT_MODEL)
    if key not in opts:
        key = DEFAULT_MODEL
        set_model(key)
    st.session_state["vz_model_select"] = key
    container.selectbox("Model", list(opts), format_func=opts.get, key="vz_model_select",
                        on_change=lambda: set_model(st.session_state["vz_model_select"]),
                        help="The network to inspect. Add your own on the Home page.")
    return current_model()


# --------------------------------------------------------------------------- input image


@dataclass
class InputImage:
    """The current input, fitted to the current model.

    Attributes:
        raw: uint8 (H, W, C) at the model's input size.
        x: float32 (H, W, C) in the model's range.
        title: Where it came from.
        label: True class index when known (dataset images on a matching model), else None.
    """

    raw: np.ndarray
    x: np.ndarray
    title: str
    label: int | None


def default_source() -> dict:
    return {"kind": "dataset", "dataset": "fashion_mnist", "index": 0}


def set_input(source: dict) -> None:
    """Store the input's source: a dataset item or an uploaded/drawn uint8 image."""
    st.session_state[INPUT_KEY] = source


def source_image(source: dict) -> tuple[np.ndarray, str, int | None, str | None]:
    """(original uint8 image, title, label, dataset name) of an input source."""
    if source["kind"] == "dataset":
        ds = load_dataset(source["dataset"])
        i = int(source["index"]) % len(ds)
        img = ds.extra["full"][i] if "full" in ds.extra else ds.images[i]
        label = int(ds.labels[i])
        return img, f"{data.DATASET_LABELS[ds.name]} #{i} ({ds.class_names[label]})", label, ds.name
    return source["image"], source.get("title", "uploaded image"), None, None


def current_input(info: models.ModelInfo | None = None) -> InputImage:
    """The session's input image, fitted to ``info``'s input size and channels."""
    info = info or current_model()
    source = st.session_state.get(INPUT_KEY) or default_source()
    try:
        img, title, label, ds_name = source_image(source)
    except data.DataUnavailable as exc:
        st.error(f"{exc}")
        source = default_source()
        st.session_state[INPUT_KEY] = source
        img, title, label, ds_name = source_image(source)
    h, w, c = info.input_shape
    invert = {"auto": None, "yes": True, "no": False}[st.session_state.get(INVERT_KEY, "auto")]
    if invert is None and c == 1:
        # dataset images and drawings are already bright-on-black; uploads are auto-detected
        invert = False if source["kind"] == "dataset" else source.get("invert")
    raw = _fit_cached(img, h, w, c, invert)
    # the true label means something only when the dataset's classes are the model's classes
    if ds_name is None or not _same_classes(ds_name, info):
        label = None
    return InputImage(raw, info.preprocess(raw), title, label)


@st.cache_data(show_spinner=False, max_entries=64)
def _fit_cached(img: np.ndarray, h: int, w: int, c: int, invert: bool | None) -> np.ndarray:
    return data.fit_image(img, (h, w), c, invert=invert)


def _same_classes(ds_name: str, info: models.ModelInfo) -> bool:
    if ds_name == "fashion_mnist":
        return info.class_names == data.FASHION_CLASSES
    if ds_name in ("mnist", "digits"):
        return info.num_classes == 10 and info.class_names != data.FASHION_CLASSES
    return False


def input_sidebar(info: models.ModelInfo) -> None:
    """A thumbnail of the current input in the sidebar."""
    from vizcore.render import upscale

    inp = current_input(info)
    st.sidebar.image(upscale(inp.raw, 112), caption=inp.title, width=140)
