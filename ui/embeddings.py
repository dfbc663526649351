"""Plotly figures for the Embeddings page (no Streamlit here, so tests can build them).

Every scatter point carries ``customdata = [sample position, dataset id, true name, predicted
name, confidence]``; :func:`ui.selection.point_from_selection` reads the position back from a
selection event.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from ui.figures import memo

#: Above this many points the scatter is drawn with WebGL (Scattergl).
GL_ABOVE = 2500


def class_colours(n: int) -> list[str]:
    """n distinct colours (Plotly's palette, then Alphabet for more classes)."""
    base = qualitative.Plotly if n <= 10 else qualitative.Alphabet
    return [base[i % len(base)] for i in range(n)]


@memo
def scatter_figure(coords: np.ndarray, labels: np.ndarray, label_names: Sequence[str],
                   preds: np.ndarray, conf: np.ndarray, class_names: Sequence[str],
                   ids: Sequence[int], selected: int | None = None, mark_errors: bool = True,
                   title: str = "", height: int = 520, gl: bool | None = None) -> go.Figure:
    """A 2-D map coloured by true class; misclassified points drawn as crosses.

    Args:
        coords: (N, 2) positions. labels: (N,) true class indices into ``label_names``.
        preds, conf: Predicted class (into ``class_names``) and its probability, per point.
        ids: Dataset index of each point (shown on hover).
        selected: Sample position to ring (the linked selection), or None.
        mark_errors: Draw points whose prediction differs from the label as crosses (only
            meaningful when the dataset's classes are the model's classes).
        gl: Force WebGL on/off; default on above :data:`GL_ABOVE` points.
    """
    coords = np.asarray(coords)
    n = len(coords)
    gl = n > GL_ABOVE if gl is None else gl
    Trace = go.Scattergl if gl else go.Scatter
    preds, labels, conf = np.asarray(preds), np.asarray(labels), np.asarray(conf)
    colours = class_colours(len(label_names))
    wrong = (preds != labels) if mark_errors else np.zeros(n, bool)
    pos = np.arange(n)
    hover = ("#%{customdata[1]} · true %{customdata[2]}<br>predicted "
             "%{customdata[3]} (%{customdata[4]:.0%})<extra></extra>")

    def customdata(m):
        cd = np.empty((int(m.sum()), 5), object)
        cd[:, 0] = pos[m]
        cd[:, 1] = np.asarray(ids)[m]
        cd[:, 2] = [label_names[c] for c in labels[m]]
        cd[:, 3] = [class_names[p] for p in preds[m]]
        cd[:, 4] = conf[m]
        return cd

    fig = go.Figure()
    for c, name in enumerate(label_names):
        m = (labels == c) & ~wrong
        if not (labels == c).any():
            continue
        fig.add_trace(Trace(
            x=coords[m, 0], y=coords[m, 1], mode="markers", name=f"{c}: {name}",
            customdata=customdata(m), hovertemplate=hover,
            marker=dict(color=colours[c], size=6, opacity=0.85, line=dict(width=0))))
    if wrong.any():
        fig.add_trace(Trace(
            x=coords[wrong, 0], y=coords[wrong, 1], mode="markers",
            name="× wrong prediction (colour = true class)", customdata=customdata(wrong),
            hovertemplate=hover,
            marker=dict(color=[colours[c] for c in labels[wrong]], size=9, symbol="x",
                        opacity=0.95, line=dict(width=0))))
    if selected is not None and 0 <= selected < n:
        s = int(selected)
        fig.add_trace(Trace(
            x=[coords[s, 0]], y=[coords[s, 1]], mode="markers", name="selected",
            customdata=[[s, int(ids[s]), label_names[labels[s]], class_names[preds[s]],
                         float(conf[s])]],
            marker=dict(size=24, color="black", symbol="circle-open", line=dict(width=3)),
            hovertemplate="selected #%{customdata[1]}<extra></extra>", showlegend=True))
    fig.update_xaxes(showticklabels=False, zeroline=False, showgrid=False)
    fig.update_yaxes(showticklabels=False, zeroline=False, showgrid=False)
    fig.update_layout(title=title or None, height=height, clickmode="event+select",
                      dragmode="pan", legend=dict(orientation="h", y=-0.02, yanchor="top",
                                                  font=dict(size=11)),
                      margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      plot_bgcolor="white")
    return fig


def _fit_unit(xy: np.ndarray) -> np.ndarray:
    centred = xy - xy.mean(axis=0)
    m = float(np.abs(centred).max()) or 1.0
    return centred / m


@memo
def animation_figure(snapshots: np.ndarray, iters: Sequence[int], labels: np.ndarray,
                     label_names: Sequence[str], exaggeration_iters: int = 0,
                     max_points: int = 2500, seed: int = 0, height: int = 560) -> go.Figure:
    """t-SNE's optimisation as a plotly animation (one frame per snapshot).

    Each frame is centred and scaled to fit the same box (t-SNE maps grow as they converge),
    so only the arrangement changes between frames. At most ``max_points`` (a seeded random
    subset) are animated to keep the figure light.
    """
    n = snapshots.shape[1]
    keep = np.arange(n)
    if n > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))
    labels = np.asarray(labels)[keep]
    colours = class_colours(len(label_names))
    present = [c for c in range(len(label_names)) if (labels == c).any()]

    def traces(xy):
        xy = _fit_unit(xy[keep])
        return [go.Scatter(x=xy[labels == c, 0], y=xy[labels == c, 1], mode="markers",
                           name=f"{c}: {label_names[c]}", hoverinfo="skip",
                           marker=dict(color=colours[c], size=5, opacity=0.8))
                for c in present]

    def caption(it):
        phase = "early exaggeration" if it <= exaggeration_iters and it > 0 else (
            "initialisation (PCA)" if it == 0 else "normal gradient descent")
        return f"iteration {it}: {phase}"

    frames = [go.Frame(data=traces(s), name=str(it), layout=go.Layout(title=caption(it)))
              for s, it in zip(snapshots, iters)]
    fig = go.Figure(data=traces(snapshots[0]), frames=frames)
    steps = [dict(method="animate", label=str(it),
                  args=[[str(it)], dict(mode="immediate", frame=dict(duration=0, redraw=False),
                                        transition=dict(duration=0))]) for it in iters]
    fig.update_layout(
        title=caption(iters[0]), height=height, plot_bgcolor="white",
        xaxis=dict(range=[-1.08, 1.08], showticklabels=False, showgrid=False, zeroline=False),
        yaxis=dict(range=[-1.08, 1.08], showticklabels=False, showgrid=False, zeroline=False),
        legend=dict(font=dict(size=11)),
        margin=dict(l=10, r=10, t=40, b=90),
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=-0.02, xanchor="left",
                          yanchor="top", pad=dict(t=30, r=10),
                          buttons=[
                              dict(label="▶ Play", method="animate",
                                   args=[None, dict(frame=dict(duration=180, redraw=False),
                                                    transition=dict(duration=120),
                                                    fromcurrent=True, mode="immediate")]),
                              dict(label="❚❚ Pause", method="animate",
                                   args=[[None], dict(frame=dict(duration=0, redraw=False),
                                                      mode="immediate")])])],
        sliders=[dict(active=0, steps=steps, x=0.18, len=0.82, y=-0.02, yanchor="top",
                      pad=dict(t=20), currentvalue=dict(prefix="iteration "))])
    return fig
