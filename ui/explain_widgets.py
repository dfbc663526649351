"""Widgets shared by pages that show attribution maps: parameter forms, overlays, cached runs."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from vizcore import render
from vizcore.explain import REGISTRY, Explanation, MethodSpec, explain
from vizcore.models import ModelInfo


def param_widgets(spec: MethodSpec, key_prefix: str, show_advanced: bool = False) -> dict:
    """One widget per parameter of a method (defaults from its paper); returns the values."""
    values = {}
    for p in spec.params:
        if p.advanced and not show_advanced:
            continue
        key = f"{key_prefix}_{spec.key}_{p.name}"
        label = p.name.replace("_", " ")
        if p.kind == "int":
            values[p.name] = st.slider(label, int(p.low or 1), int(p.high or 100), int(p.default),
                                       key=key, help=p.help)
        elif p.kind == "float":
            lo, hi = float(p.low or 0.0), float(p.high or 1.0)
            if p.log:
                values[p.name] = st.select_slider(
                    label, options=sorted({float(f"{v:.2g}") for v in np.geomspace(
                        max(lo, 1e-9), hi, 13)} | {float(p.default)}),
                    value=float(p.default), key=key, help=p.help)
            else:
                values[p.name] = st.slider(label, lo, hi, float(p.default), key=key, help=p.help)
        elif p.kind == "choice":
            values[p.name] = st.selectbox(label, list(p.choices),
                                          index=list(p.choices).index(p.default), key=key,
                                          help=p.help)
        elif p.kind == "bool":
            values[p.name] = st.checkbox(label, bool(p.default), key=key, help=p.help)
    return values


@st.cache_data(show_spinner=False, max_entries=256)
def cached_explain(model_key: str, _info: ModelInfo, x: np.ndarray, method: str,
                   target: int | None, layer: str | None,
                   params: tuple[tuple[str, object], ...]) -> Explanation:
    """:func:`vizcore.explain.explain`, cached per (model, image, method, target, layer, params)."""
    return explain(_info, x, method, target=target, layer=layer, **dict(params))


def run_methods(info: ModelInfo, x: np.ndarray, keys: list[str], target: int | None,
                layer: str | None, params: dict[str, dict]) -> dict[str, Explanation | str]:
    """Explain with several methods under one progress bar; errors become messages."""
    out: dict[str, Explanation | str] = {}
    bar = st.progress(0.0, text="Computing explanations...") if len(keys) > 1 else None
    for i, key in enumerate(keys):
        if bar is not None:
            bar.progress(i / len(keys), text=f"Computing {REGISTRY[key].name}...")
        try:
            out[key] = cached_explain(info.key, info, x, key, target, layer,
                                      tuple(sorted(params.get(key, {}).items())))
        except (ValueError, KeyError, TypeError) as exc:
            out[key] = f"{REGISTRY[key].name} could not run: {exc}"
    if bar is not None:
        bar.empty()
    return out


def overlay_figure(raw: np.ndarray, heat: np.ndarray, opacity: float, title: str = "",
                   colorscale: str = "Jet", height: int = 300) -> go.Figure:
    """The image with the [0, 1] heatmap laid over it and a colour bar (plotly, hover values)."""
    rgb = render.to_rgb(raw)
    fig = go.Figure(go.Image(z=rgb, hoverinfo="skip"))
    fig.add_trace(go.Heatmap(z=heat, colorscale=colorscale, zmin=0, zmax=1, opacity=opacity,
                             colorbar=dict(thickness=10, len=0.9, title=""),
                             hovertemplate="x=%{x} y=%{y}: %{z:.2f}<extra></extra>"))
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, scaleanchor="x", autorange="reversed")
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=28 if title else 0, b=0),
                      title=dict(text=title, font=dict(size=13)) if title else None)
    return fig


def signed_figure(signed: np.ndarray, title: str = "", height: int = 300) -> go.Figure:
    """A signed map (summed over channels) on a diverging scale centred at 0."""
    a = signed.sum(axis=-1) if signed.ndim == 3 else signed
    m = float(np.abs(a).max()) or 1.0
    fig = go.Figure(go.Heatmap(z=a, colorscale="RdBu_r", zmin=-m, zmax=m, zmid=0,
                               colorbar=dict(thickness=10, len=0.9),
                               hovertemplate="x=%{x} y=%{y}: %{z:.3g}<extra></extra>"))
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, scaleanchor="x", autorange="reversed")
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=28 if title else 0, b=0),
                      title=dict(text=title, font=dict(size=13)) if title else None)
    return fig


def target_picker(info: ModelInfo, probs: np.ndarray, key: str) -> int | None:
    """'Predicted class' or any class, ordered by probability; returns None for predicted."""
    order = [int(i) for i in np.argsort(-probs, kind="stable")]  # ties: lowest index first,
    # as np.argmax (the page's "predicted class") picks it
    options = [None, *order]

    def fmt(i):
        if i is None:
            return f"the predicted class ({info.class_names[order[0]]})"
        return f"{info.class_names[i]} ({probs[i]:.1%})"

    return st.selectbox("Explain which class?", options, format_func=fmt, key=key,
                        help="Ask 'where is the cat?' and 'where is the dog?' in the same image.")
