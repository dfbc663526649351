"""An on-disk store of computed results, shared by every process on the machine.

The app keeps results in memory per server (Streamlit's caches); this store keeps the expensive
ones on disk as well, so that ``python -m vizcore warm`` can compute a lesson's maps and
embeddings before class and the server's first student reads them instead of waiting.

Entries are keyed by content: a SHA-256 over the parts of the request (arrays hashed by dtype,
shape and bytes), including :data:`STORE_VERSION`, so a change of input, model weights or
parameters is a different key and a stale result is never returned. Values are pickled into
``<dir>/<first two hex digits>/<key>.pkl`` through a temporary file and an atomic rename; a
corrupt or unreadable entry is treated as missing. The store prunes the oldest entries when it
grows past :data:`MAX_BYTES`. Set ``VIZCORE_STORE=off`` to disable it, or to a directory to move
it (default ``~/.cache/vizcore/results``).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: Part of every key: bump it when a stored result's meaning changes.
STORE_VERSION = 1
#: The store prunes its oldest entries above this size.
MAX_BYTES = 512 * 1024 * 1024

_LOCK = threading.Lock()
_written = [0]


def store_dir() -> Path | None:
    """The store's directory, or None when ``VIZCORE_STORE=off``."""
    env = os.environ.get("VIZCORE_STORE", "")
    if env.lower() in ("off", "0", "none", "false"):
        return None
    return Path(env) if env else Path.home() / ".cache" / "vizcore" / "results"


def _feed(h, part: Any) -> None:
    if isinstance(part, np.ndarray) and part.dtype == object:  # by content, not by pointer
        h.update(f"ndO{part.shape}".encode())
        _feed(h, part.tolist())
    elif isinstance(part, np.ndarray):
        a = np.ascontiguousarray(part)
        h.update(f"nd{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    elif isinstance(part, (list, tuple)):
        h.update(f"seq{len(part)}(".encode())
        for p in part:
            _feed(h, p)
        h.update(b")")
    elif isinstance(part, dict):
        _feed(h, sorted(part.items()))
    else:
        h.update(f"{type(part).__name__}:{part!r};".encode())


def key_of(*parts: Any) -> str:
    """The hex SHA-256 of ``parts`` (numbers, strings, arrays, nested lists / dicts)."""
    h = hashlib.sha256(f"vizcore-store-{STORE_VERSION};".encode())
    _feed(h, parts)
    return h.hexdigest()


def model_identity(info) -> str:
    """A hash of the model's weights and scaling (computed once per model, in its engine): two
    processes that load the same weights get the same identity."""
    from vizcore.engine import get_engine

    def build() -> str:
        h = hashlib.sha256()
        for w in info.model.get_weights():
            _feed(h, np.asarray(w))
        return h.hexdigest()[:32]

    return f"{get_engine(info).cached('weights_identity', build)}:{info.scaling}"


def _path(key: str) -> Path | None:
    root = store_dir()
    return None if root is None else root / key[:2] / f"{key}.pkl"


def get(key: str) -> Any | None:
    """The stored value of ``key``, or None (missing, disabled, unreadable)."""
    path = _path(key)
    if path is None or not path.is_file():
        return None
    try:
        with path.open("rb") as f:
            value = pickle.load(f)
        os.utime(path)  # recently used: pruned last
        return value
    except Exception:  # noqa: BLE001 - a half-written or foreign file is just a miss
        return None


def put(key: str, value: Any) -> bool:
    """Store ``value`` under ``key``; False when the store is disabled or not writable."""
    path = _path(key)
    if path is None:
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        return False
    with _LOCK:
        _written[0] += path.stat().st_size
        if _written[0] > MAX_BYTES // 8:
            _written[0] = 0
            prune()
    return True


def cached(parts: tuple, compute: Callable[[], Any]) -> Any:
    """The stored result for ``parts``, or ``compute()`` stored and returned."""
    key = key_of(*parts)
    value = get(key)
    if value is None:
        value = compute()
        put(key, value)
    return value


def prune(max_bytes: int = MAX_BYTES) -> int:
    """Delete the least recently used entries until the store holds at most ``max_bytes``;
    returns the number deleted."""
    root = store_dir()
    if root is None or not root.is_dir():
        return 0
    files = []
    for p in root.glob("*/*.pkl"):
        try:
            st = p.stat()
        except OSError:
            continue
        files.append((st.st_mtime, st.st_size, p))
    total = sum(s for _, s, _ in files)
    removed = 0
    for _, size, p in sorted(files):
        if total <= max_bytes:
            break
        try:
            p.unlink()
            total -= size
            removed += 1
        except OSError:
            pass
    return removed


def explanation_key(info, x: np.ndarray, method: str, target: int | None = None,
                    layer: str | None = None, params: dict | None = None) -> str:
    """The store key of an explanation: the same request however it is spelled (parameter
    defaults filled in, the layer only for methods that use one)."""
    from vizcore.explain import get_method

    spec = get_method(method)
    full = {**spec.defaults(), **(params or {})}
    used_layer = (layer or info.cam_layer()) if spec.uses_layer else None
    return key_of("explain", model_identity(info), np.asarray(x, np.float32), method,
                  None if target is None else int(target), used_layer, full)


def explanation(info, x: np.ndarray, method: str, target: int | None = None,
                layer: str | None = None, progress=None, *, min_seconds: float = 0.0,
                store_key: str | None = None, **params):
    """:func:`vizcore.explain.explain` through the store (same arguments, same result).

    Args:
        min_seconds: Store a computed result only when it took at least this long (the app
            passes 0.2 s: a map that costs milliseconds is not worth a file).
        store_key: :func:`explanation_key` of the request when the caller has it already.
    """
    from vizcore.explain import explain

    if store_dir() is None:  # no key to build (it would hash the model's weights)
        return explain(info, x, method, target, layer, progress, **params)
    key = store_key or explanation_key(info, x, method, target, layer, params)
    value = get(key)
    if value is None:
        value = explain(info, x, method, target, layer, progress, **params)
        if value.seconds >= min_seconds:
            put(key, value)
    return value


def projection(X: np.ndarray, labels: np.ndarray, method: str, seed: int, params: dict,
               k: int = 10, progress=None):
    """(:func:`vizcore.embed.project` of ``X``, :func:`vizcore.embed.quality` of it) through
    the store, keyed by the features' content and the settings. ``progress(fraction, message)``
    is called while computing (not on a hit)."""
    from vizcore import embed

    def compute():
        report = progress or (lambda f, m: None)
        proj = embed.project(X, method, seed=seed,
                             progress=lambda f, m: report(0.9 * f, m), **params)
        report(0.95, "trustworthiness and k-NN accuracy...")
        return proj, embed.quality(X, proj.coords, labels, k=k, seed=seed)

    parts = ("projection", np.asarray(X), np.asarray(labels), method, int(seed), dict(params),
             int(k))
    return cached(parts, compute)


def maximization(info, layer: str, unit: int, params, progress=None):
    """:func:`vizcore.actmax.maximize` of one unit through the store (keyed by the model's
    weights, the unit and every optimisation setting): the tour's and the unit page's
    animations, precomputed by ``python -m vizcore warm --lesson``."""
    from vizcore import actmax

    def compute():
        return actmax.maximize(info, layer, [int(unit)], params, progress)

    if store_dir() is None:
        return compute()
    return cached(("actmax", model_identity(info), layer, int(unit), params.as_dict()), compute)


def layer_peaks(info, layer: str, images: np.ndarray, data_key: str, progress=None):
    """:func:`vizcore.patches.layer_peaks` through the store (keyed by the model's weights,
    the layer and the images' key): one pass over the dataset per layer and machine."""
    from vizcore import patches

    def compute():
        return patches.layer_peaks(info, layer, images, data_key, progress=progress)

    if store_dir() is None:
        return compute()
    return cached(("peaks", model_identity(info), layer, data_key, len(images)), compute)
