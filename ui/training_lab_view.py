"""Helpers for the Training lab page: throttled progress, curve figures, and the pictures of an
evolution recording."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go

from vizcore import features, render
from vizcore.evolution import EvolutionRecording
from vizcore.transfer import RUN_KINDS, Comparison

COLOURS = {"transfer": "#1f77b4", "scratch": "#ff7f0e"}
OVERLAY_COLOURS = {"transfer": "#7fb3d5", "scratch": "#f5b041"}


def throttled(fn: Callable[..., None], seconds: float = 0.3) -> Callable[..., None]:
    """``fn`` called at most once every ``seconds`` (a progress bar updated on every batch would
    flood the browser); calls in between are dropped. Each call that goes through is a Streamlit
    call, which is where a Stop click interrupts a training run."""
    last = [0.0]

    def wrapper(*args, **kwargs) -> None:
        now = time.monotonic()
        if now - last[0] >= seconds:
            last[0] = now
            fn(*args, **kwargs)

    return wrapper


def curves_figure(comp: Comparison | None, overlays: list[Comparison], metric: str,
                  epochs: int | None = None) -> go.Figure:
    """Train (solid) and validation (dashed) ``metric`` per epoch of both runs; saved runs in
    ``overlays`` are drawn faded underneath."""
    fig = go.Figure()
    layers = [(c, True) for c in overlays] + ([(comp, False)] if comp is not None else [])
    longest = 1
    for i, (c, faded) in enumerate(layers):
        tag = f" [{i + 1}]" if faded else ""
        for kind in RUN_KINDS:
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


def evolution_curve(rec: EvolutionRecording, s: int) -> go.Figure:
    """Validation/train accuracy and first-layer kernel change across snapshots, with the
    selected snapshot marked."""
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


def kernels_image(rec: EvolutionRecording, s: int, side: int = 360) -> np.ndarray:
    """The first-layer kernels of snapshot ``s`` as one grid (0 = mid-grey)."""
    tiles = features.kernel_tiles(rec.kernels[s])
    cols = min(16, len(tiles))
    return render.upscale(render.grid(tiles, cols=cols, normalize_each=False), side)


def maps_image(rec: EvolutionRecording, layer: str, s: int, side: int = 96) -> np.ndarray:
    """The recorded feature maps of ``layer`` at snapshot ``s`` in one row (each tile scaled on
    its own, viridis)."""
    maps = rec.maps[layer][s]
    return render.upscale(render.grid(maps, cols=len(maps), cmap="viridis"), side)


def actmax_tiles(rec: EvolutionRecording, s: int, side: int = 112) -> list[np.ndarray]:
    """One upscaled uint8 image per recorded unit at snapshot ``s``."""
    imgs = np.round(np.clip(rec.actmax[s], 0, 1) * 255).astype(np.uint8)
    return [render.upscale(im, side) for im in imgs]
