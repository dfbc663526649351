"""Every cached call into the core, in one place.

- ``st.cache_resource`` for models and other objects that hold Keras state (shared, never
  copied); ``st.cache_data`` for results. A model travels as ``_info`` (not hashed) next to its
  key (``ModelInfo.key``, a content hash for uploads); arrays are hashed by content.
- Results of long runs that drive a progress bar live in :class:`ProgressLRU` instead:
  ``st.cache_data`` replays the elements a cached function touched, so a bar made outside it and
  updated from inside raises ``CacheReplayClosureError``.

Only ``data`` and ``models`` are imported at start-up (the entry point needs them); the other
core modules are imported by the function that uses them, so a page pays only for its own.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from ui.progress import progress
from vizcore import data, models

# --------------------------------------------------------------------------- progress LRU


class ProgressLRU:
    """A small process-wide LRU of results shared by all sessions (like ``st.cache_data``), for
    runs that report progress: on a miss, ``compute(update)`` runs under a progress bar.

    Keys are hashable (model key, content digests, settings); values are the core's results, not
    copied. Two sessions missing the same key at once both compute it (the lock guards the
    dictionary only, never a computation).
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def get(self, key: Hashable, compute: Callable[[Callable[..., None]], Any], text: str,
            update: str | None = None) -> Any:
        """The stored result for ``key``, else ``compute(progress_callback)`` with a bar showing
        ``text`` (see :class:`ui.progress.ProgressBar` for ``update``), stored."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        with progress(text, update=update) as bar:
            value = compute(bar)
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_RESULTS = ProgressLRU(32)  # occlusion maps, adversarial patches, flip-rate tables
_ACTMAX = ProgressLRU(48)  # one unit's activation maximization
_ATLAS = ProgressLRU(8)  # filter atlases


def digest(a: np.ndarray) -> str:
    """A short content hash of an array (for cache and session keys)."""
    a = np.ascontiguousarray(a)
    return hashlib.sha1(a.tobytes() + str((a.shape, a.dtype)).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- models and data


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


class UploadGone(models.ModelLoadError):
    """An uploaded model left the server's cache (too many models loaded); upload it again."""


@st.cache_resource(show_spinner="Checking your model file...", max_entries=12)
def load_upload(digest: str, _data: bytes | None, filename: str, scaling: str | None,
                class_names: tuple[str, ...] | None,
                input_size: tuple[int, int] | None) -> models.ModelInfo:
    """A user's model, loaded once per process for its content and settings.

    The cache key is the file's content hash (``digest``), the name (for the label only), the
    scaling, the class names and the input size; the bytes are not hashed again. Sessions that
    upload the same file with the same settings share one model; two different files with the
    same name never do. Called with ``_data=None`` it only looks the model up.

    Raises:
        UploadGone: ``_data`` is None and the model is no longer cached.
        models.ModelLoadError: the file cannot be used (the message says why and the fix).
    """
    if _data is None:  # an exception is not cached, so a later upload loads it again
        raise UploadGone(f"'{filename}' is no longer loaded on the server.")
    return models.load_user_model(_data, filename, scaling,
                                  list(class_names) if class_names else None, input_size, digest)


@st.cache_data(show_spinner="Loading the dataset...", max_entries=8)
def load_dataset(name: str) -> data.Dataset:
    return data.load_dataset(name)


@st.cache_data(show_spinner=False, max_entries=4)
def vgg16_weights_path() -> str | None:
    found = models.find_vgg16_weights()
    return str(found) if found else None


@st.cache_data(show_spinner=False, max_entries=64)
def fit_image(img: np.ndarray, h: int, w: int, c: int, invert: bool | None) -> np.ndarray:
    """:func:`vizcore.data.fit_image` to (h, w, c)."""
    return data.fit_image(img, (h, w), c, invert=invert)


def sample_source(info: models.ModelInfo) -> str:
    """The dataset whose images suit ``info`` (same classes where possible)."""
    if info.class_names == data.FASHION_CLASSES:
        return "fashion_mnist"
    if info.num_classes == 10 and info.input_shape[-1] == 1:
        return "digits"
    return "photos"


@st.cache_data(show_spinner="Preparing a sample of images...", max_entries=16)
def sample_images(key: str, _info: models.ModelInfo, n: int, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray | None, str]:
    """A balanced, seeded sample of ``n`` dataset images fitted to the model: (x model range
    (n, H, W, C), labels when the classes match else None, dataset name)."""
    name = sample_source(_info)
    ds = load_dataset(name)
    idx = ds.balanced_sample(min(n, len(ds)), seed)
    h, w, c = _info.input_shape
    imgs = ds.extra["full"] if "full" in ds.extra else ds.images
    raw = np.stack([data.fit_image(imgs[i], (h, w), c, invert=False if name != "photos"
                                   else None) for i in idx])
    same = name == "fashion_mnist" or (name == "digits" and _info.num_classes == 10)
    labels = ds.labels[idx].astype(np.int64) if same else None
    return _info.preprocess(raw), labels, name


# --------------------------------------------------------------------------- the network


@st.cache_data(show_spinner=False, max_entries=16)
def layer_table(key: str, _model) -> list[dict]:
    from vizcore import features

    return features.layer_table(_model)


@st.cache_data(show_spinner=False, max_entries=16)
def graph_dot(key: str, _model, rankdir: str) -> str:
    from vizcore import features

    return features.graph_dot(_model, rankdir)


@st.cache_data(show_spinner=False, max_entries=16)
def first_kernels(key: str, _model) -> tuple[str, np.ndarray]:
    """(name of the first conv layer, its kernels as tiles)."""
    from vizcore import features

    name, k = features.first_conv_kernels(_model)
    return name, features.kernel_tiles(k)


@st.cache_data(show_spinner="Computing feature maps...", max_entries=64)
def feature_maps(key: str, _model, layer: str, x: np.ndarray, sort: str):
    from vizcore import features

    return features.feature_maps(_model, layer, x, sort=sort)


@st.cache_data(show_spinner=False, max_entries=64)
def dense_activations(key: str, _model, layer: str, x: np.ndarray) -> np.ndarray:
    from vizcore import features

    return features.dense_activations(_model, layer, x)


# --------------------------------------------------------------------------- explanations


@st.cache_data(show_spinner=False, max_entries=256)
def explain(model_key: str, _info: models.ModelInfo, x: np.ndarray, method: str,
            target: int | None, layer: str | None, params: tuple[tuple[str, object], ...]):
    """:func:`vizcore.explain.explain`, cached per (model, image, method, target, layer, params)."""
    from vizcore.explain import explain as run

    return run(_info, x, method, target=target, layer=layer, **dict(params))


@st.cache_data(show_spinner="Explaining...", max_entries=128)
def heatmap(model_key: str, _info: models.ModelInfo, x: np.ndarray, method: str) -> np.ndarray:
    """The [0, 1] heatmap of ``method`` for the predicted class."""
    from vizcore.explain import explain as run

    return run(_info, x, method).heatmap


# --------------------------------------------------------------------------- occlusion, attacks


def occlusion_map(info: models.ModelInfo, x: np.ndarray, patch: int, stride: int, fill: str,
                  target: int | None, text: str):
    """:func:`vizcore.explain.occlusion.occlusion_map` under a progress bar, cached."""
    from vizcore import occlusion as occ

    return _RESULTS.get(("occlusion", info.key, digest(x), patch, stride, fill, target),
                        lambda cb: occ.occlusion_map(info, x, patch, stride, fill, target,
                                                     progress=cb), text)


@st.cache_data(show_spinner="Explaining both images...", max_entries=64)
def compare_occlusion(key: str, _info: models.ModelInfo, x: np.ndarray, mask: np.ndarray,
                      fill: str, method: str | None, target: int | None):
    from vizcore import occlusion as occ

    return occ.compare_occlusion(_info, x, mask, fill, method, target)


@st.cache_data(show_spinner="Attacking...", max_entries=64)
def attack(key: str, _info: models.ModelInfo, x: np.ndarray, kind: str, eps: float,
           target: int | None, steps: int, step_size: float):
    """FGSM (``kind="fgsm"``) or PGD (towards ``target`` when given); ``eps`` and ``step_size``
    in grey levels out of 255 (a step size of 0: PGD's default)."""
    from vizcore import adversarial as adv

    if kind == "fgsm":
        return adv.fgsm(_info, x, eps / 255)
    return adv.pgd(_info, x, eps / 255, steps, step_size / 255 if step_size else None,
                   target=target)


def adversarial_patch(info: models.ModelInfo, target: int, size: int, origin: tuple[int, int],
                      steps: int, n_train: int, n_test: int):
    """(:func:`vizcore.adversarial.adversarial_patch` over ``n_train`` sample images, tested on
    ``n_test`` others, the dataset's name); under a progress bar, cached."""
    from vizcore import adversarial as adv

    xs, ys, ds_name = sample_images(info.key, info, n_train + n_test, 0)
    key = ("patch", info.key, target, size, tuple(origin), steps, n_train, n_test)
    result = _RESULTS.get(key, lambda cb: adv.adversarial_patch(
        info, xs[:n_train], xs[n_train:], target, size, tuple(origin), steps, step_size=0.2,
        batch_size=32, test_labels=None if ys is None else ys[n_train:], progress=cb),
        f"Optimising the patch over {n_train} images...")
    return result, ds_name


def flip_rates(info: models.ModelInfo, n: int, levels: tuple[int, ...],
               attacks: tuple[str, ...], pgd_steps: int):
    """(the flip-rate table of :func:`vizcore.adversarial.flip_rates` at ``levels`` grey levels,
    the number of images, the dataset's name); under a progress bar, cached."""
    from vizcore import adversarial as adv

    xs, ys, ds_name = sample_images(info.key, info, n, 1)
    key = ("flip", info.key, n, tuple(attacks), pgd_steps)
    table = _RESULTS.get(key, lambda cb: adv.flip_rates(
        info, xs, ys, [v / 255 for v in levels], list(attacks), pgd_steps, progress=cb),
        f"Attacking {len(xs)} images at {len(levels)} epsilons...")
    return table, len(xs), ds_name


# --------------------------------------------------------------------------- units


def maximize(info: models.ModelInfo, layer: str, unit: int, params, text: str):
    """:func:`vizcore.actmax.maximize` for one unit under a progress bar, cached per (model,
    layer, unit, params)."""
    from vizcore import actmax

    return _ACTMAX.get((info.key, layer, int(unit), params),
                       lambda cb: actmax.maximize(info, layer, [unit], params, cb), text,
                       "Optimising... {:.0%}")


def atlas(info: models.ModelInfo, n_filters: int, params) -> list:
    """:func:`vizcore.actmax.filter_atlas` under a progress bar, cached per (model, n_filters,
    params)."""
    from vizcore import actmax

    return _ATLAS.get((info.key, int(n_filters), params),
                      lambda cb: actmax.filter_atlas(info, n_filters, params, progress=cb),
                      "Building the atlas...", "Building the atlas... {:.0%}")


@st.cache_data(show_spinner=False, max_entries=48)
def gif(frames: np.ndarray, steps: np.ndarray) -> bytes:
    from vizcore import actmax

    return actmax.gif_bytes(frames, steps)


#: Images scanned for dataset patches when the model's input is not 28x28 grayscale.
BIG_MODEL_PATCH_IMAGES = 48


@st.cache_resource(show_spinner="Preparing the dataset images...", max_entries=4)
def patch_images(model_key: str, shape: tuple[int, int, int]) -> tuple[np.ndarray, str, str]:
    """uint8 images at the model's input size, a cache key and a description."""
    ds = data.load_fashion_mnist("test")
    what = ds.source
    if tuple(ds.images.shape[1:]) == tuple(shape):
        return ds.images, f"fashion_mnist:test:{len(ds)}", what
    idx = ds.balanced_sample(BIG_MODEL_PATCH_IMAGES, seed=0)
    imgs = np.stack([data.fit_image(ds.images[i], shape[:2], shape[2], invert=False)
                     for i in idx])
    return imgs, f"fashion_mnist:test:fit{len(idx)}", (
        f"{len(idx)} images of the {what}, resized to {shape[0]}x{shape[1]} (a full pass over "
        f"the test set at this size would take too long on a CPU)")


def unit_patches(info: models.ModelInfo, layer: str, unit: int, k: int):
    """(the ``k`` dataset patches exciting ``unit`` most, the layer's peaks, a description of
    the images). The pass over the images is cached by the core (per model, layer and images);
    a bar shows while it runs."""
    from vizcore import patches

    images, data_key, source = patch_images(info.key, info.input_shape)
    with progress(f"Running {len(images):,} images through `{layer}` (once)...") as bar:
        peaks = patches.layer_peaks(info, layer, images, data_key, progress=bar)
    return patches.top_patches(info, peaks, images, unit, k), peaks, source


# --------------------------------------------------------------------------- training lab


@st.cache_resource(show_spinner="Loading the task...", max_entries=3)
def transfer_task(name: str, folder: str | None, image_size: int):
    from vizcore import transfer

    return transfer.load_task(name, folder=folder, image_size=image_size)


@st.cache_resource(show_spinner="Loading VGG16's ImageNet filters...", max_entries=2)
def vgg16_base(path: str, image_size: int):
    from vizcore import transfer

    return transfer.vgg16_base(path, image_size)


@st.cache_data(show_spinner=False, max_entries=64)
def _comparisons(dirs: tuple[str, ...], stamp: tuple) -> list:
    from vizcore import transfer

    return transfer.list_comparisons(dirs)


def saved_comparisons(dirs: tuple[Path, ...]) -> list:
    """Every saved transfer comparison in ``dirs``, newest first; read again when a file in them
    appears or changes."""
    stamp = tuple(sorted((str(p), p.stat().st_mtime) for d in dirs if d.is_dir()
                         for p in d.glob("*.json")))
    return _comparisons(tuple(str(d) for d in dirs), stamp)


@st.cache_data(show_spinner="Loading the recording...", max_entries=8)
def _recording(path: str, mtime: float):
    from vizcore import evolution

    return evolution.EvolutionRecording.load(path)


def recording(path: str):
    """An evolution recording, read again when its file changes."""
    return _recording(path, Path(path).stat().st_mtime)


# --------------------------------------------------------------------------- embeddings
# The progress bar is created inside each cached function, so that a cache hit replays it
# (created, then emptied) instead of touching an element made outside. Updates every 0.4 s:
# each one re-renders the page in the browser, which competes with the computation for the CPU.


@st.cache_data(show_spinner=False, max_entries=6)
def features(model_key: str, _info: models.ModelInfo, ds_name: str, n: int, seed: int,
             layer: str):
    """(sample indices, :func:`vizcore.embed.extract_features` of ``layer`` and the pixels)."""
    from vizcore import embed

    with progress("Reading the features...", min_interval=0.4) as bar:
        ds = load_dataset(ds_name)
        idx = embed.sample_indices(ds, n, seed)
        fs = embed.extract_features(_info, ds.images[idx], [layer, embed.PIXELS], progress=bar)
    return idx, fs


@st.cache_data(show_spinner=False, max_entries=16)
def projection(model_key: str, ds_name: str, n: int, seed: int, layer: str, method: str,
               params: tuple, k: int, _X, _labels):
    """(the 2-D projection of the features ``_X`` of ``layer``, its quality measures)."""
    from vizcore import embed

    what = "raw pixels" if layer == embed.PIXELS else f"layer {layer}"
    with progress(f"{embed.METHODS[method]} of {what}...", min_interval=0.4) as bar:
        proj = embed.project(_X, method, seed=seed, progress=lambda f, m: bar(
            0.9 * f, f"{what}: {m}"), **dict(params))
        bar(0.95, f"{what}: trustworthiness and k-NN accuracy...")
        qual = embed.quality(_X, proj.coords, _labels, k=k, seed=seed)
    return proj, qual


@st.cache_data(show_spinner="Grad-CAM...", max_entries=64)
def gradcam(model_key: str, _info: models.ModelInfo, ds_name: str, index: int) -> np.ndarray:
    """Grad-CAM of dataset image ``index`` for its predicted class."""
    from vizcore import embed
    from vizcore.explain import explain as run

    ds = load_dataset(ds_name)
    x = _info.preprocess(embed.model_images(_info, ds.images[index: index + 1]))[0]
    return run(_info, x, "gradcam").heatmap
