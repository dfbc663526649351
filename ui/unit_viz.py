"""Figures and cached calls for the "What a unit wants to see" page (app_pages/unit_viz.py)."""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from vizcore import actmax, data, render

#: Images scanned for dataset patches when the model's input is not 28x28 grayscale.
BIG_MODEL_PATCH_IMAGES = 48


def _data_uri(img: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(render.png_bytes(img)).decode()


# --------------------------------------------------------------------------- cached core calls


class _Results:
    """A small process-wide LRU of results, shared by all sessions.

    Not ``st.cache_data``: these calls drive a progress bar created outside the function, which
    Streamlit's cached-element replay forbids. Keys are hashable (model key, layer, unit,
    :class:`~vizcore.actmax.AMParams`); values are the core's result objects.
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get_or_run(self, key, fn):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = fn()
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.max_entries:
                self.items.popitem(last=False)
        return value


_AM = _Results(48)
_ATLAS = _Results(8)


def maximize(model_key: str, info, layer: str, unit: int, params: actmax.AMParams,
             progress=None) -> actmax.ActMaxResult:
    """:func:`vizcore.actmax.maximize` for one unit, cached per (model, layer, unit, params)."""
    return _AM.get_or_run((model_key, layer, int(unit), params),
                          lambda: actmax.maximize(info, layer, [unit], params, progress))


def atlas(model_key: str, info, n_filters: int, params: actmax.AMParams,
          progress=None) -> list[actmax.AtlasRow]:
    """:func:`vizcore.actmax.filter_atlas`, cached per (model, n_filters, params)."""
    return _ATLAS.get_or_run((model_key, int(n_filters), params),
                             lambda: actmax.filter_atlas(info, n_filters, params,
                                                         progress=progress))


@st.cache_data(show_spinner=False, max_entries=48)
def gif(frames: np.ndarray, steps: np.ndarray) -> bytes:
    return actmax.gif_bytes(frames, steps)


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


# --------------------------------------------------------------------------- figures


def animation_figure(frames: np.ndarray, steps: np.ndarray, title: str = "",
                     size: int = 420) -> go.Figure:
    """A plotly image animation over the recorded frames (T, H, W, C) uint8: a play/pause
    button and a step slider."""
    big = [render.upscale(render.to_rgb(f), size // 2) for f in frames]
    uris = [_data_uri(b) for b in big]
    fig = go.Figure(go.Image(source=uris[0]),
                    frames=[go.Frame(data=[go.Image(source=u)], name=str(int(s)))
                            for u, s in zip(uris, steps)])
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    play = dict(label="▶ Play", method="animate",
                args=[None, dict(frame=dict(duration=120, redraw=True), fromcurrent=True,
                                 transition=dict(duration=0))])
    pause = dict(label="❚❚ Pause", method="animate",
                 args=[[None], dict(frame=dict(duration=0, redraw=False), mode="immediate")])
    slider = dict(active=0, currentvalue=dict(prefix="step "), pad=dict(t=30),
                  steps=[dict(label=str(int(s)), method="animate",
                              args=[[str(int(s))], dict(mode="immediate",
                                                        frame=dict(duration=0, redraw=True))])
                         for s in steps])
    fig.update_layout(title=title or None, height=size + 110, sliders=[slider],
                      updatemenus=[dict(type="buttons", showactive=False, x=0, y=-0.02,
                                        xanchor="left", yanchor="top", direction="right",
                                        buttons=[play, pause])],
                      margin=dict(l=0, r=0, t=30 if title else 0, b=10))
    return fig


def curve_figure(values: np.ndarray, frame_steps: np.ndarray, start: float, final: float,
                 label: str) -> go.Figure:
    """The unit's activation per step, with the random start and the result marked."""
    steps = np.arange(len(values))
    fig = go.Figure(go.Scatter(x=steps, y=values, mode="lines", name="during optimisation",
                               hovertemplate="step %{x}: %{y:.4g}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[0, len(values)], y=[start, final], mode="markers",
                             marker=dict(size=10, color=["#7f7f7f", "#d62728"]),
                             name="start / result (no jitter)",
                             hovertemplate="%{y:.4g}<extra></extra>"))
    fig.update_layout(xaxis_title="step", yaxis_title=label, height=320,
                      legend=dict(orientation="h", y=1.12),
                      margin=dict(l=10, r=10, t=30, b=40))
    return fig


def tiles_image(tiles: np.ndarray, cols: int, tile_side: int = 96) -> np.ndarray:
    """uint8 tiles (n, h, w, C) enlarged and laid out in a grid."""
    big = np.stack([render.upscale(render.to_rgb(t), tile_side) for t in tiles])
    side = max(b.shape[0] for b in big)
    big = np.stack([b if b.shape[0] == side else render.upscale(b, side) for b in big])
    return render.grid(big, cols=cols, pad=3, pad_value=128)
