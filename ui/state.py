"""Session state: the model and the input the user picked, and the current prediction.

The only place pages get the model and the input from. The loaders behind them (models, uploads,
datasets) are cached in :mod:`ui.cache`; session state holds keys and small records only: an
uploaded model lives in the server's cache, held by the sessions that loaded it (through a
token that lives as long as the session, see :class:`ui.cache.Holders`), and an uploaded
image is kept at most :data:`MAX_INPUT_SIDE` pixels on its longer side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from ui import links
from ui.cache import (
    UPLOADS,
    UploadGone,
    fit_image,
    load_dataset,
    load_model,
    load_upload,
    probabilities,
    vgg16_weights_path,
)
from ui.cache import digest as array_digest
from vizcore import data, models

MODEL_KEY = "vz_model_key"
INPUT_KEY = "vz_input"
UPLOADS_KEY = "vz_uploaded_models"  # {model key: UploadRecord}, the uploads in the picker
UPLOAD_SETTINGS_KEY = "vz_upload_settings"  # {content digest: UploadRecord}, last settings
UPLOAD_DIGESTS_KEY = "vz_upload_digests"  # {uploader file id: content digest}
FLASH_KEY = "vz_flash"
INVERT_KEY = "vz_invert"
TOKEN_KEY = "vz_session_token"  # lives as long as the session: what holds its uploads
DEFAULT_MODEL = "fashion_vgg"
#: Longer side, in pixels, of an uploaded image as the session keeps it (models read 224 at
#: most; a 40-megapixel photo would otherwise take 120 MB of every session that uploads it).
MAX_INPUT_SIDE = 1024


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class UploadRecord:
    """What a session keeps of one uploaded model: the settings to find it in the cache again.

    Attributes:
        key: The model's key (``ModelInfo.key``: content hash of file and settings).
        digest: Content hash of the file alone.
        filename: The file's name (for the label only).
        scaling: The scaling the user chose, None for "auto".
        class_names: The names the user gave, None for the defaults.
        input_size: The (H, W) asked for, None for the model's own (or the default).
        flexible: True when the model accepts any input size.
        size: The (H, W) the model runs at.
    """

    key: str
    digest: str
    filename: str
    scaling: str | None
    class_names: tuple[str, ...] | None
    input_size: tuple[int, int] | None
    flexible: bool
    size: tuple[int, int]

    @property
    def label(self) -> str:
        return f"Your model: {self.filename}"

    @property
    def cache_args(self) -> tuple:
        """The arguments of :func:`ui.cache.load_upload` (without the bytes) naming the model
        in the server's cache."""
        return (self.digest, self.filename, self.scaling, self.class_names, self.input_size)

    def info(self) -> models.ModelInfo:
        """The cached model (``UploadGone`` once it has been evicted)."""
        return load_upload(self.digest, None, self.filename, self.scaling, self.class_names,
                           self.input_size)


class SessionToken:
    """An object that lives exactly as long as its session's state: the holder of the session's
    uploaded models (:data:`ui.cache.UPLOADS` keeps weak references to it)."""


def session_token() -> SessionToken:
    """This session's :class:`SessionToken`."""
    return st.session_state.setdefault(TOKEN_KEY, SessionToken())


def model_options() -> dict[str, str]:
    """Model choices: key -> label (VGG16 only when its weights are on this machine)."""
    opts = {k: label for k, (_, label) in models.BUILTIN.items()}
    if vgg16_weights_path():
        opts["vgg16"] = "VGG16 (ImageNet weights)"
    opts["vgg16-random"] = "VGG16, random weights (architecture only)"
    for key, rec in uploads().items():
        opts[key] = rec.label
    return opts


def current_model() -> models.ModelInfo:
    """The model the user picked (the default CNN until they pick another)."""
    key = st.session_state.get(MODEL_KEY, DEFAULT_MODEL)
    rec = uploads().get(key)
    if rec is not None:
        try:
            return rec.info()
        except UploadGone:
            del st.session_state[UPLOADS_KEY][key]
            UPLOADS.drop(rec.cache_args, session_token())
            st.warning(f"{rec.label} was unloaded from the server's memory to make room for "
                       "other models. Fix: upload the file again on the Home page (your settings "
                       "for it are remembered). Showing the default model meanwhile.",
                       icon=":material/memory:")
            st.session_state[MODEL_KEY] = DEFAULT_MODEL
            return load_model(DEFAULT_MODEL)
    try:
        return load_model(key)
    except Exception as exc:  # a missing file must not take the app down
        st.error(f"Could not load {key}: {exc}. Falling back to the default model.")
        st.session_state[MODEL_KEY] = DEFAULT_MODEL
        return load_model(DEFAULT_MODEL)


def set_model(key: str) -> None:
    st.session_state[MODEL_KEY] = key


def uploads() -> dict[str, UploadRecord]:
    """The session's uploaded models: model key -> record (no models: they live in the cache)."""
    return st.session_state.get(UPLOADS_KEY, {})


def current_upload() -> UploadRecord | None:
    """The record of the current model when it is an upload, else None."""
    return uploads().get(st.session_state.get(MODEL_KEY, DEFAULT_MODEL))


def upload_settings(digest: str | None) -> UploadRecord | None:
    """The settings this session last loaded the file with content hash ``digest`` with."""
    return st.session_state.get(UPLOAD_SETTINGS_KEY, {}).get(digest) if digest else None


def uploaded_digest(up) -> str:
    """The content hash of an ``st.file_uploader`` file, computed once per uploaded file."""
    seen = st.session_state.setdefault(UPLOAD_DIGESTS_KEY, {})
    if up.file_id not in seen:
        seen[up.file_id] = models.content_digest(up.getvalue())
    return seen[up.file_id]


def add_upload(data_bytes: bytes, filename: str, scaling: str | None = None,
               class_names: list[str] | None = None,
               input_size: tuple[int, int] | None = None) -> models.ModelInfo:
    """Load an uploaded model (through :func:`load_upload`), register it and select it.

    The session keeps a small :class:`UploadRecord` under the model's key (a content hash, never
    the file name) and remembers the settings for the file's content. Loading the same file
    with other settings replaces its previous entry in the picker.

    Raises:
        models.ModelLoadError: the file or the settings cannot be used; nothing changes.
    """
    digest = models.content_digest(data_bytes)
    names = tuple(class_names) if class_names else None
    size = (int(input_size[0]), int(input_size[1])) if input_size else None
    token, args = session_token(), (digest, filename, scaling, names, size)
    UPLOADS.hold(args, token)  # before loading: a release racing this load keeps the model
    try:
        info = load_upload(digest, data_bytes, filename, scaling, names, size)
    except BaseException:
        UPLOADS.drop(args, token)
        raise
    flexible = "input size" in info.card
    rec = UploadRecord(info.key, digest, filename, scaling, names, size, flexible,
                       tuple(info.input_shape[:2]))
    ups = st.session_state.setdefault(UPLOADS_KEY, {})
    for old in [k for k, r in ups.items() if r.digest == digest]:
        if ups[old].cache_args != args:  # the same file with other settings: let it go
            UPLOADS.drop(ups[old].cache_args, token)
        del ups[old]
    ups[info.key] = rec
    st.session_state.setdefault(UPLOAD_SETTINGS_KEY, {})[digest] = rec
    set_model(info.key)
    return info


def flash(message: str | None = None) -> str | None:
    """Keep a message for the next run (``flash(msg)``), or take the kept one (``flash()``)."""
    if message is not None:
        st.session_state[FLASH_KEY] = message
        return None
    return st.session_state.pop(FLASH_KEY, None)


def model_picker(container=st.sidebar) -> models.ModelInfo:
    """A selectbox bound to the session's model choice.

    The choice lives in ``MODEL_KEY``; the widget is re-synced to it before it is drawn, so a
    model selected by code (an upload on the Home page) shows up here too, and a user's pick goes
    through the on_change callback.
    """
    if current_upload() is not None:
        current_model()  # drops an upload that left the cache (and says so) before listing
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

    @property
    def digest(self) -> str:
        """A content hash of the image (for cache and session keys: never its title)."""
        return array_digest(self.raw)


def default_source() -> dict:
    return {"kind": "dataset", "dataset": "fashion_mnist", "index": 0}


def set_input(source: dict) -> None:
    """Store the input's source: a dataset item or an uploaded/drawn uint8 image (reduced to
    :data:`MAX_INPUT_SIDE` pixels on its longer side)."""
    if source.get("kind") == "image" and max(source["image"].shape[:2]) > MAX_INPUT_SIDE:
        source = {**source, "image": _shrink(source["image"], MAX_INPUT_SIDE)}
    st.session_state[INPUT_KEY] = source


def _shrink(img: np.ndarray, side: int) -> np.ndarray:
    """A uint8 image scaled down so that its longer side is ``side`` pixels."""
    from PIL import Image

    h, w = img.shape[:2]
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    pil = Image.fromarray(img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img)
    out = np.asarray(pil.resize(size, Image.LANCZOS))
    return out[..., None] if img.ndim == 3 and out.ndim == 2 else out


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
    raw = fit_image(img, h, w, c, invert)
    # the true label means something only when the dataset's classes are the model's classes
    if ds_name is None or not _same_classes(ds_name, info):
        label = None
    return InputImage(raw, info.preprocess(raw), title, label)


def _same_classes(ds_name: str, info: models.ModelInfo) -> bool:
    if ds_name == "fashion_mnist":
        return info.class_names == data.FASHION_CLASSES
    if ds_name in ("mnist", "digits"):
        return info.num_classes == 10 and info.class_names != data.FASHION_CLASSES
    return False


def predict(info: models.ModelInfo, inp: InputImage) -> tuple[np.ndarray, int]:
    """(class probabilities of the input, the predicted class): one forward pass, shared."""
    probs = probabilities(info, inp.x)
    return probs, int(np.argmax(probs))


def input_sidebar(info: models.ModelInfo) -> None:
    """A thumbnail of the current input in the sidebar."""
    from ui.figures import png

    inp = current_input(info)
    st.sidebar.image(png(inp.raw, 112), caption=inp.title, width=140)


# --------------------------------------------------------------------------- links


def link_image(text: str) -> str | None:
    """Apply a link's ``img=dataset:index``; None when done, else why it cannot be used."""
    from vizcore.lessons import LessonError, parse_image

    try:
        name, index = parse_image(text)
        ds = load_dataset(name)
    except LessonError as exc:
        return str(exc).replace("image ", "", 1)
    except data.DataUnavailable as exc:
        return f"that dataset is not on this server ({exc})"
    if not 0 <= index < len(ds):
        return f"{data.DATASET_LABELS[name]} has images 0 to {len(ds) - 1}"
    set_input({"kind": "dataset", "dataset": name, "index": index})
    return None


def common_link() -> tuple[dict[str, str], list[str]]:
    """(the model / image / hide / lesson parameters of the current view, what cannot travel)."""
    params: dict[str, str] = {}
    cannot: list[str] = []
    model = st.session_state.get(MODEL_KEY, DEFAULT_MODEL)
    if current_upload() is not None:
        cannot.append("Your uploaded model")
    elif model != DEFAULT_MODEL:
        params["model"] = model
    source = st.session_state.get(INPUT_KEY) or default_source()
    if source["kind"] == "dataset":
        if source != default_source():
            params["img"] = f"{source['dataset']}:{int(source['index'])}"
    else:
        cannot.append("Your uploaded or drawn image")
    if hide := st.session_state.get(links.HIDE_KEY):
        params["hide"] = ",".join(sorted(hide))
    if lesson := st.session_state.get(links.LESSON_KEY):
        params["lesson"] = lesson
    return params, cannot


def sync_link(fields=(), button: bool = True,
              cannot_travel: tuple[str, ...] = ()) -> links.Link:
    """Write the current view (the page's ``fields`` and the common state) to the address bar
    and draw the "Copy link" button (see :mod:`ui.links`)."""
    common, cannot = common_link()
    return links.sync(fields, common, [*cannot, *cannot_travel], button)
