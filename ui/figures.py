"""Plotly figure builders for the pages. No Streamlit here: every figure can be built and checked
in a test without running a page.

:func:`heatmap_figure` is the one figure for a map (attribution, occlusion, feature map), alone
or laid over its image. The Embeddings page's scatter and t-SNE animation live in
:mod:`ui.embeddings`.
"""

from __future__ import annotations

import base64
import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from vizcore import render
from vizcore.store import key_of

#: Colour scales: a diverging one centred at 0 for signed maps, else one for a map over an image
#: and one for a map alone.
SIGNED_SCALE, OVERLAY_SCALE, PLAIN_SCALE = "RdBu_r", "Jet", "Viridis"

COLOURS = {"transfer": "#1f77b4", "scratch": "#ff7f0e"}
OVERLAY_COLOURS = {"transfer": "#7fb3d5", "scratch": "#f5b041"}


# --------------------------------------------------------------------------- shared figures

#: How many built figures :func:`memo` keeps (process-wide, least recently used first out).
MEMO_ENTRIES = 96
_memo: OrderedDict[tuple, go.Figure] = OrderedDict()
_memo_lock = threading.Lock()


def _remembered(cache: OrderedDict, key, make: Callable[[], object], limit: int):
    """``cache[key]``, else ``make()`` stored under it; least recently used out past ``limit``.
    ``make`` runs outside the lock: a rare duplicate build is harmless."""
    with _memo_lock:
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
    value = make()
    with _memo_lock:
        cache[key] = value
        while len(cache) > limit:
            cache.popitem(last=False)
    return value


def memo(builder: Callable[..., go.Figure]) -> Callable[..., go.Figure]:
    """Build a figure once per distinct content of its arguments, for every session.

    A page rerun (a click anywhere, thirty students on the same image) would otherwise rebuild
    and re-validate the same plotly figure each time, which is most of a rerun's CPU under
    load. Arguments are keyed by content (arrays by their bytes), so equal inputs share one
    figure. The figure returned is shared: callers must not modify it (``st.plotly_chart``
    only reads it). Its ``to_dict()`` is computed once and shared too.
    """

    def make(args, kwargs) -> go.Figure:
        fig = builder(*args, **kwargs)
        spec = fig.to_dict()  # what st.plotly_chart asks for on every rerun: a deep copy plus
        fig.to_dict = lambda: spec  # a typed-array encoding of every array, made once here
        return fig

    @functools.wraps(builder)
    def build(*args, **kwargs) -> go.Figure:
        key = (builder.__module__, key_of(builder.__qualname__, args, kwargs))
        return _remembered(_memo, key, lambda: make(args, kwargs), MEMO_ENTRIES)

    build.uncached = builder
    return build


_png_memo: OrderedDict[str, bytes] = OrderedDict()


def png(img: np.ndarray, side: int | None = None) -> bytes:
    """``img`` (uint8 or float, gray or RGB) as PNG bytes, upscaled with hard pixels so that its
    shorter side is at least ``side``; encoded once per content for every session (st.image of
    an array would encode it again on every rerun)."""
    a = np.asarray(img)
    return _remembered(_png_memo, key_of(a, side),
                       lambda: render.png_bytes(render.upscale(a, side) if side else a),
                       4 * MEMO_ENTRIES)


def _title(title: str) -> dict | None:
    return dict(text=title, font=dict(size=13)) if title else None


# --------------------------------------------------------------------------- maps


@memo
def heatmap_figure(values: np.ndarray, image: np.ndarray | None = None, *, signed: bool = False,
                   opacity: float = 0.6, zmin: float | None = None, zmax: float | None = None,
                   colorscale: str | None = None, colorbar_title: str = "", title: str = "",
                   height: int = 320) -> go.Figure:
    """A map with a colour bar (values on hover), alone or laid over ``image``.

    Args:
        values: (H, W) map, or (H, W, C) summed over its channels.
        image: The image under the map (uint8 or float, gray or RGB), or None for the map alone.
        signed: A signed map: diverging :data:`SIGNED_SCALE` centred at 0 over a symmetric range
            (+-the largest absolute value, unless ``zmin`` / ``zmax`` say otherwise).
        opacity: Of the map over ``image`` (a map alone is opaque).
        zmin, zmax: Fixed colour range (e.g. 0 and 1 for a normalised heatmap or a probability);
            default: the values' range.
        colorscale: Overrides the default (:data:`OVERLAY_SCALE` over an image, else
            :data:`PLAIN_SCALE`).
        colorbar_title, title, height: Labels and size.
    """
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 3:
        a = a.sum(axis=-1)
    zmid = None
    if signed:
        m = float(np.abs(a).max()) if a.size else 0.0
        m = m if np.isfinite(m) and m > 0 else 1.0
        zmin, zmax, zmid = -m if zmin is None else zmin, m if zmax is None else zmax, 0.0
        colorscale = colorscale or SIGNED_SCALE
    else:
        colorscale = colorscale or (OVERLAY_SCALE if image is not None else PLAIN_SCALE)
    fig = go.Figure()
    if image is not None:
        fig.add_trace(go.Image(z=render.to_rgb(image), hoverinfo="skip"))
    fig.add_trace(go.Heatmap(
        z=a, colorscale=colorscale, zmin=zmin, zmax=zmax, zmid=zmid,
        opacity=opacity if image is not None else 1.0,
        colorbar=dict(title=colorbar_title, thickness=12, len=0.9),
        hovertemplate="x=%{x} y=%{y}: %{z:.3g}<extra></extra>"))
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, scaleanchor="x", autorange="reversed")
    fig.update_layout(height=height, title=_title(title),
                      margin=dict(l=0, r=0, t=30 if title else 0, b=0))
    return fig


# --------------------------------------------------------------------------- bars


@memo
def topk_figure(probs: np.ndarray, class_names: Sequence[str], k: int = 5,
                true_label: int | None = None, title: str = "") -> go.Figure:
    """Horizontal bars of the ``k`` most probable classes, most probable on top (the true class
    green)."""
    order = np.argsort(probs)[::-1][:k][::-1]
    colours = ["#2ca02c" if int(i) == true_label else "#1f77b4" for i in order]
    fig = go.Figure(go.Bar(x=[float(probs[i]) for i in order],
                           y=[f"{class_names[i]} ({int(i)})" for i in order],
                           orientation="h", marker_color=colours,
                           text=[f"{probs[i]:.1%}" for i in order], textposition="auto",
                           hovertemplate="%{y}: %{x:.2%}<extra></extra>"))
    fig.update_layout(title=title or None, xaxis=dict(range=[0, 1], tickformat=".0%",
                                                      title="probability"),
                      height=60 + 36 * len(order),
                      margin=dict(l=10, r=10, t=40 if title else 10, b=40))
    return fig


def activations_figure(act: np.ndarray, names: Sequence[str] | None = None) -> go.Figure:
    """One bar per unit of a dense layer (class names on hover for an output layer)."""
    fig = go.Figure(go.Bar(x=np.arange(len(act)), y=act, marker_color="#1f77b4",
                           customdata=names, hovertemplate=(
                               "unit %{x}: %{y:.3g}" + (" (%{customdata})" if names else "")
                               + "<extra></extra>")))
    fig.update_layout(xaxis_title="unit", yaxis_title="activation", height=300,
                      margin=dict(l=10, r=10, t=10, b=40))
    return fig


# --------------------------------------------------------------------------- curves


def faithfulness_figure(curves: Mapping[str, object], target_name: str) -> go.Figure:
    """Deletion (solid) and insertion (dotted) curves per method name
    (:class:`vizcore.explain.metrics.FaithfulnessCurves`)."""
    fig = go.Figure()
    for name, c in curves.items():
        fig.add_trace(go.Scatter(x=c.fractions, y=c.deletion, name=f"{name} deletion"))
        fig.add_trace(go.Scatter(x=c.fractions, y=c.insertion, line=dict(dash="dot"),
                                 name=f"{name} insertion"))
    fig.update_layout(xaxis_title="fraction of pixels removed / inserted",
                      yaxis_title=f"p({target_name})", height=340,
                      margin=dict(l=10, r=10, t=10, b=40))
    return fig


def randomisation_figure(res, names: Mapping[str, str]) -> go.Figure:
    """Spearman (solid) and SSIM (dotted) similarity to the original map, per randomised layer
    and method (:class:`vizcore.explain.metrics.RandomisationResult`)."""
    fig = go.Figure()
    for key in res.methods:
        fig.add_trace(go.Scatter(x=res.layers, y=[res.spearman[(lyr, key)] for lyr in res.layers],
                                 name=f"{names[key]} (Spearman)", mode="lines+markers"))
        fig.add_trace(go.Scatter(x=res.layers, y=[res.ssim[(lyr, key)] for lyr in res.layers],
                                 name=f"{names[key]} (SSIM)", mode="lines+markers",
                                 line=dict(dash="dot")))
    fig.update_layout(xaxis_title="randomised down to layer", yaxis_title="similarity to "
                      "the original map", yaxis_range=[-0.2, 1.05], height=360,
                      margin=dict(l=10, r=10, t=10, b=40))
    return fig


def loss_figure(losses: Sequence[float], label: str = "loss of the target") -> go.Figure:
    """A loss per optimisation step."""
    fig = go.Figure(go.Scatter(y=losses, mode="lines"))
    fig.update_layout(height=220, xaxis_title="step", yaxis_title=label,
                      margin=dict(l=10, r=10, t=10, b=40))
    return fig


def flip_rate_figure(table, attacks: Sequence[str]) -> go.Figure:
    """Share of flipped predictions per epsilon, one line per attack (the table of
    :func:`vizcore.adversarial.flip_rates`)."""
    fig = go.Figure([go.Scatter(x=table["grey levels"], y=table[f"{a} flipped"],
                                mode="lines+markers", name=a.upper()) for a in attacks])
    fig.update_layout(height=300, xaxis_title="epsilon (grey levels)",
                      yaxis=dict(title="share flipped", range=[0, 1], tickformat=".0%"),
                      margin=dict(l=10, r=10, t=10, b=40))
    return fig


# ---------------------------------------------------------------- activation maximization


def _data_uri(img: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(render.png_bytes(img)).decode()


@memo
def actmax_animation_figure(frames: np.ndarray, steps: np.ndarray, title: str = "",
                            size: int = 420) -> go.Figure:
    """A plotly image animation over the recorded frames (T, H, W, C) uint8: a play/pause
    button and a step slider."""
    uris = [_data_uri(render.upscale(render.to_rgb(f), size // 2)) for f in frames]
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


def actmax_curve_figure(values: np.ndarray, start: float, final: float,
                        label: str) -> go.Figure:
    """The unit's activation per step, with the random start and the result marked."""
    fig = go.Figure(go.Scatter(x=np.arange(len(values)), y=values, mode="lines",
                               name="during optimisation",
                               hovertemplate="step %{x}: %{y:.4g}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[0, len(values)], y=[start, final], mode="markers",
                             marker=dict(size=10, color=["#7f7f7f", "#d62728"]),
                             name="start / result (no jitter)",
                             hovertemplate="%{y:.4g}<extra></extra>"))
    fig.update_layout(xaxis_title="step", yaxis_title=label, height=320,
                      legend=dict(orientation="h", y=1.12),
                      margin=dict(l=10, r=10, t=30, b=40))
    return fig


# --------------------------------------------------------------------------- training


def training_curves_figure(comp, overlays: Sequence, metric: str,
                           epochs: int | None = None) -> go.Figure:
    """Train (solid) and validation (dashed) ``metric`` per epoch of both runs of a
    :class:`vizcore.transfer.Comparison` (or None); saved runs in ``overlays`` are drawn faded
    underneath, numbered [1], [2]..."""
    fig = go.Figure()
    layers = [(c, True) for c in overlays] + ([(comp, False)] if comp is not None else [])
    longest = 1
    for i, (c, faded) in enumerate(layers):
        tag = f" [{i + 1}]" if faded else ""
        for kind in COLOURS:
            run = c.runs[kind]
            for split, key, dash in (("train", metric, "solid"),
                                     ("validation", f"val_{metric}", "dash")):
                y = run.history.get(key, [])
                longest = max(longest, len(y))
                fig.add_scatter(
                    x=list(range(1, len(y) + 1)), y=y, mode="lines+markers",
                    name=f"{kind} {split}{tag}", legendgroup=f"{kind}{tag}",
                    showlegend=not faded or split == "train",
                    line=dict(color=(OVERLAY_COLOURS if faded else COLOURS)[kind], dash=dash,
                              width=1.5 if faded else 2.5),
                    marker=dict(size=4 if faded else 7), opacity=0.55 if faded else 1.0,
                    hovertemplate=f"{kind} {split}{tag}, epoch %{{x}}: %{{y:.3f}}<extra></extra>")
    top = max(longest, epochs or 1)
    fig.update_xaxes(title="epoch", range=[0.7, top + 0.3], dtick=1 if top <= 20 else None)
    if metric == "accuracy":
        fig.update_yaxes(title="accuracy", range=[0, 1.02], tickformat=".0%")
    else:
        fig.update_yaxes(title="loss (cross-entropy)", rangemode="tozero")
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=40, b=10),
                      title=f"{metric.capitalize()}: transfer (blue) vs scratch (orange)",
                      legend=dict(orientation="h", y=-0.2))
    return fig


def evolution_figure(rec, s: int) -> go.Figure:
    """Validation/train accuracy and first-layer kernel change across the snapshots of a
    :class:`vizcore.evolution.EvolutionRecording`, snapshot ``s`` marked."""
    x = [int(e) for e in rec.epochs]
    fig = go.Figure()
    fig.add_scatter(x=x, y=rec.history["val_accuracy"][: len(x)], name="validation accuracy",
                    mode="lines+markers", line=dict(color="#1f77b4"))
    fig.add_scatter(x=x, y=rec.history["accuracy"][: len(x)], name="train accuracy",
                    mode="lines+markers", line=dict(color="#1f77b4", dash="dash"))
    fig.add_scatter(x=x, y=rec.kernel_change(), name="kernel change |W-W0|/|W0|",
                    mode="lines+markers", line=dict(color="#d62728"), yaxis="y2")
    fig.add_vline(x=int(rec.epochs[s]), line=dict(color="grey", dash="dot"))
    fig.update_layout(height=280, margin=dict(l=10, r=10, t=10, b=10),
                      xaxis=dict(title="epoch (0 = random weights)", dtick=1),
                      yaxis=dict(title="accuracy", range=[0, 1.02], tickformat=".0%"),
                      yaxis2=dict(title="kernel change", overlaying="y", side="right",
                                  rangemode="tozero"),
                      legend=dict(orientation="h", y=-0.3))
    return fig
