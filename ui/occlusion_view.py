"""Figures and data helpers for the Occlusion and Fooling-the-model pages (display only)."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui import state
from vizcore import data, render
from vizcore.models import ModelInfo

#: Explanation methods offered next to occlusions and attacks (fast ones first).
EXPLAIN_CHOICES = ("gradcam", "smoothgrad", "saliency", "integrated_gradients", "gradcam_plus_plus")


def explain_options(info: ModelInfo) -> list[str]:
    """The registered methods of :data:`EXPLAIN_CHOICES` that apply to ``info``."""
    from vizcore.explain import REGISTRY

    out = []
    for key in EXPLAIN_CHOICES:
        spec = REGISTRY.get(key)
        if spec is not None and spec.applies_to(info)[0]:
            out.append(key)
    return out


def method_name(key: str) -> str:
    from vizcore.explain import REGISTRY

    return REGISTRY[key].name if key in REGISTRY else key


def overlay_figure(raw: np.ndarray, a: np.ndarray, title: str = "", colorscale: str = "RdBu_r",
                   zmid: float | None = 0.0, zmin: float | None = None,
                   zmax: float | None = None, opacity: float = 0.6, height: int = 380,
                   colorbar_title: str = "") -> go.Figure:
    """The image with a semi-transparent heatmap on top and a colour bar (values on hover)."""
    rgb = render.to_rgb(raw)
    h, w = a.shape
    fig = go.Figure(go.Image(z=rgb, hoverinfo="skip"))
    fig.add_trace(go.Heatmap(z=a, x=np.arange(w), y=np.arange(h), colorscale=colorscale,
                             zmid=zmid, zmin=zmin, zmax=zmax, opacity=opacity,
                             colorbar=dict(title=colorbar_title, thickness=14),
                             hovertemplate="x=%{x} y=%{y}: %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False,
                     showgrid=False, zeroline=False)
    fig.update_xaxes(showticklabels=False, constrain="domain", showgrid=False, zeroline=False)
    fig.update_layout(title=title or None, height=height,
                      margin=dict(l=0, r=0, t=30 if title else 0, b=0))
    return fig


def image_figure(a: np.ndarray, title: str = "", colorscale: str = "Viridis",
                 zmin: float | None = None, zmax: float | None = None, height: int = 380,
                 colorbar_title: str = "") -> go.Figure:
    """A plain heatmap with fixed colour range and a colour bar, image orientation."""
    fig = go.Figure(go.Heatmap(z=a, colorscale=colorscale, zmin=zmin, zmax=zmax,
                               colorbar=dict(title=colorbar_title, thickness=14),
                               hovertemplate="x=%{x} y=%{y}: %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False)
    fig.update_xaxes(showticklabels=False, constrain="domain")
    fig.update_layout(title=title or None, height=height,
                      margin=dict(l=0, r=0, t=30 if title else 0, b=0))
    return fig


def show_image(raw: np.ndarray, caption: str, side: int = 280) -> None:
    """A uint8 image enlarged crisply to about ``side`` pixels."""
    st.image(render.upscale(render.to_rgb(raw), side), caption=caption, width=side)


def heat_overlay(raw: np.ndarray, heat: np.ndarray | None, side: int = 280) -> np.ndarray:
    """The explanation laid over the image, enlarged (uint8 RGB)."""
    big = render.upscale(render.to_rgb(raw), side)
    if heat is None:
        return big
    from PIL import Image

    h = np.asarray(Image.fromarray(np.float32(heat)).resize(big.shape[1::-1], Image.BILINEAR))
    return render.overlay(big, np.clip(h, 0, 1), 0.5, "jet")


def progress_bar(text: str):
    """(bar, callback) where the callback updates the bar with a fraction in [0, 1]."""
    bar = st.progress(0.0, text=text)

    def update(f: float) -> None:
        bar.progress(float(min(1.0, max(0.0, f))), text=text)

    return bar, update


def sample_source(info: ModelInfo) -> str:
    """The dataset whose images suit ``info`` (same classes where possible)."""
    if info.class_names == data.FASHION_CLASSES:
        return "fashion_mnist"
    if info.num_classes == 10 and info.input_shape[-1] == 1:
        return "digits"
    return "photos"


@st.cache_data(show_spinner="Preparing a sample of images...", max_entries=16)
def sample_images(key: str, _info: ModelInfo, n: int, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray | None, str]:
    """A balanced, seeded sample of ``n`` dataset images fitted to the model: (x model range
    (n, H, W, C), labels when the classes match else None, dataset name)."""
    name = sample_source(_info)
    ds = state.load_dataset(name)
    idx = ds.balanced_sample(min(n, len(ds)), seed)
    h, w, c = _info.input_shape
    imgs = ds.extra["full"] if "full" in ds.extra else ds.images
    raw = np.stack([data.fit_image(imgs[i], (h, w), c, invert=False if name != "photos"
                                   else None) for i in idx])
    same = name == "fashion_mnist" or (name == "digits" and _info.num_classes == 10)
    labels = ds.labels[idx].astype(np.int64) if same else None
    return _info.preprocess(raw), labels, name


# ----------------------------------------------------------------------------- results cache
# st.cache_data replays the elements a cached function touches, so a progress bar created
# outside it and updated from inside raises CacheReplayClosureError. Long computations that
# report progress are therefore cached here: a small process-wide LRU keyed by hashable
# parameters (model key, input digest, settings), shared by sessions like st.cache_data.

_LRU: OrderedDict = OrderedDict()
_LRU_LOCK = threading.Lock()
LRU_SIZE = 32


def digest(a: np.ndarray) -> str:
    """A short content hash of an array (for cache keys)."""
    a = np.ascontiguousarray(a)
    return hashlib.sha1(a.tobytes() + str((a.shape, a.dtype)).encode()).hexdigest()[:16]


def cached_with_progress(key: tuple, compute, text: str):
    """``compute(progress)`` once per ``key`` (a progress bar shows while it runs), then the
    stored result; at most :data:`LRU_SIZE` results are kept."""
    with _LRU_LOCK:
        if key in _LRU:
            _LRU.move_to_end(key)
            return _LRU[key]
    bar, cb = progress_bar(text)
    try:
        out = compute(cb)
    finally:
        bar.empty()
    with _LRU_LOCK:
        _LRU[key] = out
        while len(_LRU) > LRU_SIZE:
            _LRU.popitem(last=False)
    return out
