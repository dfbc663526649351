"""Shared widgets: prediction charts, image display with colour bars, downloads, notes."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from vizcore import render
from vizcore.models import ModelInfo


def note(text: str) -> None:
    """The two-or-three-sentence explanation every page starts with."""
    st.info(text, icon=":material/school:")


def topk_figure(info: ModelInfo, probs: np.ndarray, k: int = 5, true_label: int | None = None,
                title: str = "") -> go.Figure:
    """Horizontal bar chart of the k most probable classes (true class highlighted green)."""
    top = info.top_k(probs, k)[::-1]
    colours = ["#2ca02c" if i == true_label else "#1f77b4" for i, _, _ in top]
    fig = go.Figure(go.Bar(x=[p for _, _, p in top], y=[f"{n} ({i})" for i, n, _ in top],
                           orientation="h", marker_color=colours,
                           text=[f"{p:.1%}" for _, _, p in top], textposition="auto",
                           hovertemplate="%{y}: %{x:.2%}<extra></extra>"))
    fig.update_layout(title=title or None, xaxis=dict(range=[0, 1], tickformat=".0%",
                                                      title="probability"),
                      height=60 + 36 * len(top), margin=dict(l=10, r=10, t=40 if title else 10,
                                                             b=40))
    return fig


def heatmap_figure(a: np.ndarray, title: str = "", colorscale: str = "Viridis",
                   zmid: float | None = None, height: int = 320) -> go.Figure:
    """A plotly heatmap with a colour bar (values shown on hover), image orientation."""
    fig = go.Figure(go.Heatmap(z=a, colorscale=colorscale, zmid=zmid,
                               hovertemplate="x=%{x} y=%{y}: %{z:.3g}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False)
    fig.update_xaxes(showticklabels=False, constrain="domain")
    fig.update_layout(title=title or None, height=height,
                      margin=dict(l=0, r=0, t=30 if title else 0, b=0))
    return fig


def downloads(name: str, png: np.ndarray | None = None, array: np.ndarray | None = None,
              key: str = "") -> None:
    """PNG and .npy download buttons side by side."""
    cols = st.columns(2)
    if png is not None:
        cols[0].download_button("Download PNG", render.png_bytes(png), f"{name}.png",
                                "image/png", key=f"dl_png_{key or name}", on_click="ignore",
                                icon=":material/download:")
    if array is not None:
        cols[1].download_button("Download .npy", render.npy_bytes(array), f"{name}.npy",
                                "application/octet-stream", key=f"dl_npy_{key or name}",
                                on_click="ignore",
                                icon=":material/download:")
