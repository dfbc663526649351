"""Every cached call into the core, in one place, shared by every session of the server.

- ``st.cache_resource`` for models and other objects that hold Keras state (shared, never
  copied). A model is built *and warmed* inside its factory (:func:`warm_engine`): its standard
  compiled pieces are traced before any session can use them, so concurrent first use never
  races a trace. Uploaded models are released when the last session holding them ends
  (:class:`Holders`).
- Results that cost something (explanations, occlusion maps, attacks, activation
  maximization, embeddings, gated runs) live in :class:`SharedResults` stores: a process-wide
  LRU with *single flight* (concurrent identical requests wait for the first one's result
  instead of computing it again, and see its progress) in front of :mod:`ui.jobs`' admission
  queue (a heavy miss waits for a free slot). Values are the core's results, shared and never
  copied: callers must not modify them.
- ``st.cache_data`` for the remaining cheap calls (tables, small images; Streamlit already
  computes a missing value once and makes concurrent callers wait).

A model travels as ``_info`` (not hashed) next to its key (``ModelInfo.key``, a content hash for
uploads); arrays are keyed by a content hash (:func:`digest`).

Only ``data`` and ``models`` are imported at start-up (the entry point needs them); the other
core modules are imported by the function that uses them, so a page pays only for its own.
"""

from __future__ import annotations

import hashlib
import logging
import math
import queue
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from ui import jobs
from ui.progress import MIN_INTERVAL, progress
from vizcore import data, models, store

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- shared results


class Flight:
    """One computation in progress, shared by every request for the same key."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.abandoned = False  # the computing run stopped (a click, a Cancel): retry
        self.fraction = 0.0
        self.message: str | None = None

    def report(self, fraction: float, message: str | None = None) -> None:
        self.fraction = float(fraction)
        if message is not None:
            self.message = message

    def status(self) -> tuple[float, str | None]:
        return self.fraction, self.message


class SharedResults:
    """A process-wide LRU of results with single flight, shared by every session.

    ``get(key, compute, ...)`` returns the stored result for ``key``; on a miss, exactly one
    caller (the leader) computes it, after waiting for a slot of the admission queue when
    ``heavy``, under a progress bar when ``text`` is given; every concurrent caller with the same
    key waits for that result (with a bar mirroring the leader's progress) instead of computing
    it again. An error reaches every waiter and is not stored; when the leader's run stops
    (a click, a Cancel) a waiter takes over. A thread that holds a slot of the queue never waits
    for another thread (which might be waiting for that slot): it computes on its own.

    Keys are hashable (model key, content digests, settings); values are stored as they are,
    not copied, at most ``max_entries`` of them (least recently used first out).
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.computed = 0  # computations started (for tests and benchmarks)
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._flights: dict[Hashable, Flight] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def get(self, key: Hashable, compute: Callable[[Callable[..., None]], Any],
            text: str | None = None, update: str | None = None, *, heavy: bool = False,
            label: str | None = None, min_interval: float = MIN_INTERVAL) -> Any:
        """The stored result for ``key``, else ``compute(progress_callback)`` (see the class).

        Args:
            key: What the result depends on.
            compute: Takes a callback ``(fraction, message=None)`` and returns the result.
            text: The progress bar's text (None: no bar); ``update``: its format for updates
                without a message (see :class:`ui.progress.ProgressBar`).
            heavy: Wait for a slot of the admission queue first (see :func:`ui.jobs.is_heavy`).
            label: What the request is, in the queue's messages (default: ``text``).
            min_interval: Seconds between two redraws of the bar.

        Raises:
            ui.jobs.Cancelled: the request was cancelled in the queue on the previous run.
        """
        label = label or text or "a result"
        scope = jobs.request_scope(label)
        while True:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
                flight = self._flights.get(key)
                lead = flight is None
                if lead:
                    if scope.cancelled:
                        raise jobs.Cancelled(label)
                    flight = self._flights[key] = Flight()
            if lead:
                return self._lead(key, flight, compute, text, update, heavy, label, scope,
                                  min_interval)
            if jobs.holds_slot():
                return self._alone(key, compute, text, update, min_interval)
            if scope.cancelled:
                raise jobs.Cancelled(label)
            jobs.wait_for(flight.done, flight.status, label, scope, cancel=heavy)
            if flight.abandoned:
                continue
            if flight.error is not None:
                raise flight.error
            return flight.value

    def _store(self, key: Hashable, value: Any) -> None:  # with the lock held
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def _run(self, compute, text, update, min_interval, flight: Flight | None):
        with self._lock:
            self.computed += 1
        if text is None:
            return compute(flight.report if flight is not None else _ignore)
        with progress(text, update=update, min_interval=min_interval) as bar:
            def report(fraction: float, message: str | None = None, **kw) -> None:
                if flight is not None:
                    flight.report(fraction, message)
                bar(fraction, message, **kw)

            return compute(report)

    def _lead(self, key, flight: Flight, compute, text, update, heavy, label, scope,
              min_interval):
        try:
            with jobs.admitted(label, heavy, scope, show=lambda t: flight.report(0.0, t)):
                flight.message = None
                value = self._run(compute, text, update, min_interval, flight)
        except jobs.Cancelled:
            self._end(key, flight, abandoned=True)
            raise
        except Exception as exc:
            self._end(key, flight, error=exc)
            raise
        except BaseException:  # Streamlit stopped or reran the script: let a waiter compute
            self._end(key, flight, abandoned=True)
            raise
        with self._lock:
            self._store(key, value)
            self._flights.pop(key, None)
        flight.value = value
        flight.done.set()
        return value

    def _end(self, key, flight: Flight, error: BaseException | None = None,
             abandoned: bool = False) -> None:
        with self._lock:
            self._flights.pop(key, None)
        flight.error, flight.abandoned = error, abandoned
        flight.done.set()

    def _alone(self, key, compute, text, update, min_interval):
        value = self._run(compute, text, update, min_interval, None)
        with self._lock:
            self._store(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def _ignore(*args, **kwargs) -> None:
    return None


_EXPLAIN = SharedResults(256)  # explanations (also the heatmaps of other pages)
_RESULTS = SharedResults(32)  # occlusion maps, adversarial patches, flip-rate tables
_ATTACKS = SharedResults(64)  # FGSM and PGD
_COMPARE = SharedResults(64)  # the occlusion editor's comparisons
_ACTMAX = SharedResults(48)  # one unit's activation maximization
_ATLAS = SharedResults(8)  # filter atlases
_PEAKS = SharedResults(8)  # a layer's peaks over the dataset images (unit patches)
_FEATURES = SharedResults(6)  # embeddings: features of a sample
_PROJECTIONS = SharedResults(16)  # embeddings: 2-D maps and their quality
_PREDICTIONS = SharedResults(512)  # one image's class probabilities
#: Results of gated runs (:func:`ui.jobs.gated_result`): faithfulness, dataset scores, sanity.
GATED = SharedResults(16)


def digest(a: np.ndarray) -> str:
    """A short content hash of an array (for cache and session keys)."""
    a = np.ascontiguousarray(a)
    return hashlib.sha1(a.tobytes() + str((a.shape, a.dtype)).encode()).hexdigest()[:16]


def probabilities(info: models.ModelInfo, x: np.ndarray) -> np.ndarray:
    """Class probabilities of one model-range image (shared: every page of every session that
    shows this image asks for them; one forward pass serves them all). Do not modify."""
    return _PREDICTIONS.get((info.key, digest(x)), lambda _cb: info.forward(x[None])[0])


# --------------------------------------------------------------------------- models and data


def warm_engine(info: models.ModelInfo) -> float:
    """Build and trace, once, the compiled pieces sessions use first: the forward pass (class
    probabilities), logits, the softmax of the logits, the input gradient and Grad-CAM's
    pipeline at the default CAM layer (where the model has one), each run on a black image.

    Called inside the cached model factories, so that no two sessions ever race a first trace.
    Returns the seconds it took. A failure is logged, not raised: the model stays usable and
    the piece is built on first use instead.
    """
    import tensorflow as tf

    from vizcore.engine import get_engine
    from vizcore.explain import REGISTRY
    from vizcore.explain import explain as run

    t0 = time.perf_counter()
    try:
        eng = get_engine(info)
        x = np.zeros(info.input_shape, np.float32)
        eng.probabilities(x)
        eng.logits_fn()(x[None])
        eng.probs_fn()(x[None])
        eng.input_grad_fn()(x[None], tf.constant(-1, tf.int32))
        if store.store_dir() is not None:
            store.model_identity(info)  # hash the weights here, not in a student's first map
        if REGISTRY["gradcam"].applies_to(info)[0]:
            run(info, x, "gradcam")
    except Exception:  # noqa: BLE001 - warming is an optimisation
        log.warning("warming the engine of %s failed", info.key, exc_info=True)
    return time.perf_counter() - t0


@st.cache_resource(show_spinner="Loading the model (once per server)...")
def load_model(key: str) -> models.ModelInfo:
    """A built-in model or VGG16, loaded and warmed (:func:`warm_engine`) once per process and
    shared by all sessions."""
    if key in models.BUILTIN:
        info = models.load_builtin(key)
    elif key == "vgg16":
        info = models.load_vgg16("auto")
    elif key == "vgg16-random":
        info = models.load_vgg16("random")
    else:
        raise KeyError(key)
    warm_engine(info)
    return info


class UploadGone(models.ModelLoadError):
    """An uploaded model left the server's cache (too many models loaded); upload it again."""


@st.cache_resource(show_spinner="Checking your model file...", max_entries=12)
def load_upload(digest: str, _data: bytes | None, filename: str, scaling: str | None,
                class_names: tuple[str, ...] | None,
                input_size: tuple[int, int] | None) -> models.ModelInfo:
    """A user's model, loaded and warmed once per process for its content and settings.

    The cache key is the file's content hash (``digest``), the name (for the label only), the
    scaling, the class names and the input size; the bytes are not hashed again. Sessions that
    upload the same file with the same settings share one model; two different files with the
    same name never do. Called with ``_data=None`` it only looks the model up.

    Memory: an entry is dropped when the last live session that loaded it ends, or loads the
    file again with other settings (:data:`UPLOADS`); at most 12 are kept in any case (the
    oldest goes first: its sessions are told to upload it again).

    Raises:
        UploadGone: ``_data`` is None and the model is no longer cached.
        models.ModelLoadError: the file cannot be used (the message says why and the fix).
    """
    if _data is None:  # an exception is not cached, so a later upload loads it again
        raise UploadGone(f"'{filename}' is no longer loaded on the server.")
    info = models.load_user_model(_data, filename, scaling,
                                  list(class_names) if class_names else None, input_size, digest)
    warm_engine(info)
    return info


class Holders:
    """Which live sessions hold which shared object; the object is released when the last
    holder is gone (no Streamlit here).

    A holder is any object that lives exactly as long as its session (a token kept in the
    session's state); the table keeps weak references only. When a holder is garbage-collected
    its weak reference's callback puts the key on a queue (``SimpleQueue.put`` is safe there);
    a daemon thread (``background=True``) or :meth:`sweep` then calls ``release(key)`` for each
    key that no live holder holds any more.
    """

    def __init__(self, release: Callable[[Hashable], None], background: bool = True) -> None:
        self._release = release
        self._held: dict[Hashable, dict[int, weakref.ref]] = {}
        self._lock = threading.Lock()
        self._dead: queue.SimpleQueue = queue.SimpleQueue()
        self._background = background
        self._thread: threading.Thread | None = None

    def hold(self, key: Hashable, holder: object) -> None:
        """``holder`` holds ``key`` (until it dies or :meth:`drop`)."""
        dead = self._dead

        def gone(_ref, key=key) -> None:  # runs wherever the holder is collected: no locks
            dead.put(key)

        with self._lock:
            refs = self._held.setdefault(key, {})
            ref = refs.get(id(holder))
            if ref is None or ref() is not holder:
                refs[id(holder)] = weakref.ref(holder, gone)
            if self._background and self._thread is None:
                self._thread = threading.Thread(target=self._janitor, daemon=True,
                                                name="vizcore-holders")
                self._thread.start()

    def drop(self, key: Hashable, holder: object) -> None:
        """``holder`` no longer holds ``key``; release it if nobody else does."""
        with self._lock:
            refs = self._held.get(key, {})
            ref = refs.get(id(holder))
            if ref is not None and ref() is holder:
                del refs[id(holder)]
        self._dead.put(key)
        if not self._background:
            self.sweep()

    def holders(self, key: Hashable) -> int:
        """Live holders of ``key``."""
        with self._lock:
            return sum(1 for r in self._held.get(key, {}).values() if r() is not None)

    def sweep(self) -> list[Hashable]:
        """Release every queued key that no live holder holds; returns them."""
        released = []
        while True:
            try:
                key = self._dead.get_nowait()
            except queue.Empty:
                return released
            if self._check(key):
                released.append(key)

    def _check(self, key: Hashable) -> bool:
        with self._lock:
            refs = self._held.get(key)
            if refs is None:
                return False
            for k in [k for k, r in refs.items() if r() is None]:
                del refs[k]
            if refs:
                return False
            del self._held[key]
        try:
            self._release(key)
        except Exception:  # noqa: BLE001 - never kill the janitor
            log.warning("releasing %r failed", key, exc_info=True)
        return True

    def _janitor(self) -> None:
        while True:
            key = self._dead.get()
            self._check(key)


def _release_upload(args: tuple) -> None:
    load_upload.clear(args[0], None, *args[1:])


#: Which sessions hold which uploaded model, keyed by ``load_upload``'s arguments (digest,
#: file name, scaling, class names, input size); see :func:`ui.state.add_upload`.
UPLOADS = Holders(_release_upload)


@st.cache_resource(show_spinner="Loading the dataset...", max_entries=8)
def load_dataset(name: str) -> data.Dataset:
    """A dataset, shared by every session (read-only: do not modify its arrays). Not
    ``st.cache_data``: that unpickled a fresh copy of all its images on every call, several
    times per rerun (a tenth of a rerun's CPU under a class's load)."""
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


def _canonical(info: models.ModelInfo, method: str, layer: str | None,
               params: tuple[tuple[str, object], ...]) -> tuple[str | None, tuple]:
    """(layer, params) as the core will use them, so equal requests share one key: parameters
    completed by their defaults, the layer only for methods that read one (None: the default)."""
    from vizcore.explain import REGISTRY

    spec = REGISTRY.get(method)
    if spec is None:
        return layer, tuple(params)
    full = {**spec.defaults(), **dict(params)}
    return ((layer or info.cam_layer()) if spec.uses_layer else None), tuple(sorted(full.items()))


def explain(model_key: str, _info: models.ModelInfo, x: np.ndarray, method: str,
            target: int | None, layer: str | None, params: tuple[tuple[str, object], ...]):
    """:func:`vizcore.explain.explain`, shared per (model, image, method, target, layer, params);
    a heavy one (:func:`ui.jobs.is_heavy` of :func:`ui.jobs.explain_passes`) waits for a slot.
    The :class:`~vizcore.explain.Explanation` is shared: do not modify it."""
    from vizcore.explain import REGISTRY

    lyr, canon = _canonical(_info, method, layer, params)
    key = (model_key, digest(x), method, target, lyr, canon)
    name = REGISTRY[method].name if method in REGISTRY else method
    try:
        heavy = jobs.is_heavy(_info, jobs.explain_passes(_info, method, dict(canon), lyr))
    except (ValueError, KeyError, TypeError):  # bad parameters: the core says why
        heavy = False
    # the machine's result store (filled by `python -m vizcore warm` or another server)
    # answers first: a stored map never waits for a slot
    skey = (store.explanation_key(_info, x, method, target, layer, dict(params))
            if store.store_dir() is not None else None)
    if heavy and skey is not None and store.get(skey) is not None:
        heavy = False
    return _EXPLAIN.get(key, lambda cb: store.explanation(
        _info, x, method, target, layer, cb, min_seconds=0.2, store_key=skey, **dict(params)),
        None, heavy=heavy, label=name)


def heatmap(model_key: str, _info: models.ModelInfo, x: np.ndarray, method: str) -> np.ndarray:
    """The [0, 1] heatmap of ``method`` for the predicted class (shared with :func:`explain`)."""
    return explain(model_key, _info, x, method, None, None, ()).heatmap


# --------------------------------------------------------------------------- occlusion, attacks


def occlusion_map(info: models.ModelInfo, x: np.ndarray, patch: int, stride: int, fill: str,
                  target: int | None, text: str):
    """:func:`vizcore.occlusion.occlusion_map` under a progress bar, shared."""
    from vizcore import occlusion as occ

    _, _, ys, xs = occ.resolve_geometry(info.input_shape, patch, stride)
    heavy = jobs.is_heavy(info, 1 + len(ys) * len(xs), 1)
    return _RESULTS.get(("occlusion", info.key, digest(x), patch, stride, fill, target),
                        lambda cb: occ.occlusion_map(info, x, patch, stride, fill, target,
                                                     progress=cb), text, heavy=heavy,
                        label="the occlusion map")


def compare_occlusion(key: str, _info: models.ModelInfo, x: np.ndarray, mask: np.ndarray,
                      fill: str, method: str | None, target: int | None):
    """:func:`vizcore.occlusion.compare_occlusion` (both images explained with ``method``),
    shared."""
    from vizcore import occlusion as occ

    passes = 2 + (2 * jobs.explain_passes(_info, method) if method else 0)
    return _COMPARE.get(("compare", key, digest(x), digest(mask), fill, method, target),
                        lambda cb: occ.compare_occlusion(_info, x, mask, fill, method, target),
                        "Explaining both images...", heavy=jobs.is_heavy(_info, passes, 2),
                        label="explaining both images")


def attack(key: str, _info: models.ModelInfo, x: np.ndarray, kind: str, eps: float,
           target: int | None, steps: int, step_size: float):
    """FGSM (``kind="fgsm"``) or PGD (towards ``target`` when given); ``eps`` and ``step_size``
    in grey levels out of 255 (a step size of 0: PGD's default). Shared."""
    from vizcore import adversarial as adv

    def run(cb):
        if kind == "fgsm":
            return adv.fgsm(_info, x, eps / 255)
        return adv.pgd(_info, x, eps / 255, steps, step_size / 255 if step_size else None,
                       target=target)

    n = 1 if kind == "fgsm" else int(steps)
    return _ATTACKS.get(("attack", key, digest(x), kind, eps, target, steps, step_size), run,
                        "Attacking...", heavy=jobs.is_heavy(_info, 2 * n, n),
                        label="the attack")


def adversarial_patch(info: models.ModelInfo, target: int, size: int, origin: tuple[int, int],
                      steps: int, n_train: int, n_test: int):
    """(:func:`vizcore.adversarial.adversarial_patch` over ``n_train`` sample images, tested on
    ``n_test`` others, the dataset's name); under a progress bar, shared."""
    from vizcore import adversarial as adv

    xs, ys, ds_name = sample_images(info.key, info, n_train + n_test, 0)
    key = ("patch", info.key, target, size, tuple(origin), steps, n_train, n_test)
    result = _RESULTS.get(key, lambda cb: adv.adversarial_patch(
        info, xs[:n_train], xs[n_train:], target, size, tuple(origin), steps, step_size=0.2,
        batch_size=32, test_labels=None if ys is None else ys[n_train:], progress=cb),
        f"Optimising the patch over {n_train} images...",
        heavy=jobs.is_heavy(info, 2 * steps * n_train + n_test, steps),
        label="the adversarial patch")
    return result, ds_name


def flip_rates(info: models.ModelInfo, n: int, levels: tuple[int, ...],
               attacks: tuple[str, ...], pgd_steps: int):
    """(the flip-rate table of :func:`vizcore.adversarial.flip_rates` at ``levels`` grey levels,
    the number of images, the dataset's name); under a progress bar, shared."""
    from vizcore import adversarial as adv

    xs, ys, ds_name = sample_images(info.key, info, n, 1)
    key = ("flip", info.key, n, tuple(levels), tuple(attacks), pgd_steps)
    per_image = sum(2 if a == "fgsm" else 2 * pgd_steps for a in attacks)
    table = _RESULTS.get(key, lambda cb: adv.flip_rates(
        info, xs, ys, [v / 255 for v in levels], list(attacks), pgd_steps, progress=cb),
        f"Attacking {len(xs)} images at {len(levels)} epsilons...",
        heavy=jobs.is_heavy(info, len(xs) * len(levels) * per_image,
                            len(levels) * (1 + pgd_steps)), label="the flip-rate table")
    return table, len(xs), ds_name


# --------------------------------------------------------------------------- units


def maximize(info: models.ModelInfo, layer: str, unit: int, params, text: str):
    """:func:`vizcore.actmax.maximize` for one unit under a progress bar, shared per (model,
    layer, unit, params)."""

    return _ACTMAX.get((info.key, layer, int(unit), params),
                       lambda cb: store.maximization(info, layer, unit, params, cb), text,
                       "Optimising... {:.0%}", heavy=jobs.is_heavy(
                           info, 2 * params.steps, params.steps),
                       label="activation maximization")


def atlas(info: models.ModelInfo, n_filters: int, params) -> list:
    """:func:`vizcore.actmax.filter_atlas` under a progress bar, shared per (model, n_filters,
    params)."""
    from vizcore import actmax

    steps = len(actmax.atlas_layers(info)) * params.steps
    return _ATLAS.get((info.key, int(n_filters), params),
                      lambda cb: actmax.filter_atlas(info, n_filters, params, progress=cb),
                      "Building the atlas...", "Building the atlas... {:.0%}",
                      heavy=jobs.is_heavy(info, 2 * steps * n_filters, steps),
                      label="the filter atlas")


@st.cache_data(show_spinner=False, max_entries=48)
def gif(frames: np.ndarray, steps: np.ndarray) -> bytes:
    from vizcore import actmax

    return actmax.gif_bytes(frames, steps)


@st.cache_resource(show_spinner="Preparing the dataset images...", max_entries=4)
def patch_images(model_key: str, shape: tuple[int, int, int]) -> tuple[np.ndarray, str, str]:
    """:func:`vizcore.patches.dataset_images`, shared."""
    from vizcore import patches

    return patches.dataset_images(shape)


def unit_patches(info: models.ModelInfo, layer: str, unit: int, k: int):
    """(the ``k`` dataset patches exciting ``unit`` most, the layer's peaks, a description of
    the images). The pass over the images is shared per (model, layer, images), under a bar."""
    from vizcore import patches

    images, data_key, source = patch_images(info.key, info.input_shape)
    peaks = _PEAKS.get((info.key, layer, data_key), lambda cb: store.layer_peaks(
        info, layer, images, data_key, progress=cb),
        f"Running {len(images):,} images through `{layer}` (once)...",
        heavy=jobs.is_heavy(info, len(images), math.ceil(len(images) / 256)),
        label="the dataset patches")
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
# Bars update every 0.4 s: each update re-renders the page in the browser, which competes with
# the computation for the CPU.


def features(model_key: str, _info: models.ModelInfo, ds_name: str, n: int, seed: int,
             layer: str):
    """(sample indices, :func:`vizcore.embed.extract_features` of ``layer`` and the pixels),
    shared."""
    from vizcore import embed

    def run(cb):
        ds = load_dataset(ds_name)
        idx = embed.sample_indices(ds, n, seed)
        return idx, embed.extract_features(_info, ds.images[idx], [layer, embed.PIXELS],
                                           progress=cb)

    return _FEATURES.get((model_key, ds_name, n, seed, layer), run, "Reading the features...",
                         heavy=jobs.is_heavy(_info, n, math.ceil(n / 64)),
                         label="reading the features", min_interval=0.4)


#: Seconds per image of a t-SNE or UMAP projection (for the heavy/light rule); PCA is light.
PROJECTION_SECONDS = {"pca": 0.0, "tsne": 0.004, "umap": 0.004}


def projection(model_key: str, ds_name: str, n: int, seed: int, layer: str, method: str,
               params: tuple, k: int, _X, _labels):
    """(the 2-D projection of the features ``_X`` of ``layer``, its quality measures), shared
    per (model, sample, layer, method, params, k)."""
    from vizcore import embed

    what = "raw pixels" if layer == embed.PIXELS else f"layer {layer}"

    def run(bar):  # through the machine's result store (see `python -m vizcore warm`)
        return store.projection(_X, _labels, method, seed, dict(params), k,
                                progress=lambda f, m: bar(f, f"{what}: {m}"))

    seconds = PROJECTION_SECONDS.get(method, 0.004) * n
    return _PROJECTIONS.get((model_key, ds_name, n, seed, layer, method, params, k), run,
                            f"{embed.METHODS[method]} of {what}...",
                            heavy=jobs.is_heavy(None, seconds=seconds),
                            label=f"the {embed.METHODS[method]} map", min_interval=0.4)


def gradcam(model_key: str, _info: models.ModelInfo, ds_name: str, index: int) -> np.ndarray:
    """Grad-CAM of dataset image ``index`` for its predicted class (shared with
    :func:`explain`)."""
    from vizcore import embed

    ds = load_dataset(ds_name)
    x = _info.preprocess(embed.model_images(_info, ds.images[index: index + 1]))[0]
    return explain(model_key, _info, x, "gradcam", None, None, ()).heatmap
