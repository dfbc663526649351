"""Filters, feature maps and layer activations.

Tapped models (the shared model's graph, read at chosen layers) come from the model's engine
(:mod:`vizcore.engine`), built once per (model, layers); the shared model is never modified.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def layer_table(model) -> list[dict]:
    """One row per layer: name, type, output shape, parameters, trainable, inbound layers."""
    from vizcore.graph import graph_of

    rows = []
    for node in graph_of(model).nodes:
        lyr = node.layer
        rows.append({
            "name": node.name,
            "type": node.kind,
            "output shape": str(tuple(node.output.shape)).replace("None", "batch"),
            "activation": node.activation,
            "parameters": int(lyr.count_params()) if getattr(lyr, "built", False) else 0,
            "trainable": bool(getattr(lyr, "trainable", False)),
            "inbound": list(node.parents),
        })
    return rows


#: Layers drawn in the model graph (the layer table lists all of them).
GRAPH_MAX_LAYERS = 120


def graph_dot(model, rankdir: str = "TB", max_layers: int = GRAPH_MAX_LAYERS) -> str:
    """A Graphviz DOT description of the model graph (name, type, output shape, parameters)."""
    rows = layer_table(model)[:max_layers]
    colours = {"Conv2D": "#cfe2ff", "Dense": "#ffe5b4", "MaxPooling2D": "#d1e7dd",
               "InputLayer": "#e2e3e5", "GlobalAveragePooling2D": "#d1e7dd",
               "Flatten": "#f8d7da", "Dropout": "#f3f3f3", "BatchNormalization": "#e0cffc"}
    lines = [f'digraph model {{ rankdir={rankdir}; node [shape=box, style="rounded,filled", '
             'fontname="Helvetica", fontsize=11];']
    for r in rows:
        label = f"{r['name']}\\n{r['type']}"
        if r["activation"] and r["activation"] != "linear":
            label += f" ({r['activation']})"
        label += f"\\n{r['output shape']}"
        if r["parameters"]:
            label += f"\\n{r['parameters']:,} params"
        colour = colours.get(r["type"], "#ffffff")
        lines.append(f'  "{r["name"]}" [label="{label}", fillcolor="{colour}"];')
    names = {r["name"] for r in rows}
    for r in rows:
        for src in r["inbound"]:
            if src in names:
                lines.append(f'  "{src}" -> "{r["name"]}";')
    lines.append("}")
    return "\n".join(lines)


def tapped_model(model, layer_names: Sequence[str]):
    """A compiled ``x -> outputs of layer_names`` (the model engine's ``tap_fn``, built once)."""
    from vizcore.engine import get_engine

    return get_engine(model).tap_fn(layer_names)


def activations(model, layer_names: Sequence[str], x: np.ndarray,
                batch_size: int = 128) -> dict[str, np.ndarray]:
    """Outputs of the named layers for a float32 batch (N, H, W, C) in model range."""
    from vizcore.engine import get_engine

    return get_engine(model).activations(layer_names, x, batch_size)


@dataclass
class FeatureMaps:
    """Feature maps of one conv layer for one image.

    Attributes:
        maps: (C, h, w) float32 activations.
        order: Channel indices in display order.
        means: Mean activation per channel (C,).
    """

    layer: str
    maps: np.ndarray
    order: np.ndarray
    means: np.ndarray


def feature_maps(model, layer: str, x: np.ndarray, sort: str = "index",
                 limit: int | None = None) -> FeatureMaps:
    """The feature maps of ``layer`` for one image ``x`` (H, W, C) in model range.

    Args:
        sort: ``"index"`` (channel order), ``"mean"`` (strongest mean activation first) or
            ``"max"`` (highest peak first).
        limit: Keep only the first ``limit`` channels after sorting.
    """
    out = activations(model, [layer], x[None])[layer][0]
    if out.ndim != 3:
        raise ValueError(f"layer {layer!r} outputs shape {out.shape}, not (h, w, channels) maps")
    maps = np.moveaxis(out, -1, 0)
    means = maps.mean(axis=(1, 2))
    if sort == "mean":
        order = np.argsort(-means, kind="stable")
    elif sort == "max":
        order = np.argsort(-maps.max(axis=(1, 2)), kind="stable")
    else:
        order = np.arange(len(maps))
    if limit is not None:
        order = order[:limit]
    return FeatureMaps(layer, maps, order, means)


def dense_activations(model, layer: str, x: np.ndarray) -> np.ndarray:
    """Activations (units,) of a Dense (or any flat) layer for one image."""
    out = activations(model, [layer], x[None])[layer][0]
    return out.reshape(-1)


def first_conv_kernels(model) -> tuple[str, np.ndarray]:
    """The first Conv2D layer's name and kernels as (n_filters, kh, kw, in_channels)."""
    from vizcore.graph import graph_of

    for name in graph_of(model).layers(("Conv2D",)):
        k = np.asarray(graph_of(model).layer(name).get_weights()[0])  # (kh, kw, cin, n)
        return name, np.transpose(k, (3, 0, 1, 2))
    raise ValueError("the model has no Conv2D layer")


def kernel_tiles(kernels: np.ndarray) -> np.ndarray:
    """Kernels (n, kh, kw, cin) -> displayable tiles in [0, 1].

    Three input channels become RGB tiles (as in Krizhevsky et al. 2012's filter figure), each
    filter scaled on its own symmetric range so that 0 is mid-grey; other channel counts show the
    mean over input channels.
    """
    if kernels.shape[-1] == 3:
        tiles = kernels
    else:
        tiles = kernels.mean(axis=-1)
    m = np.abs(tiles).reshape(len(tiles), -1).max(axis=1)
    m = np.where(m > 0, m, 1.0).reshape((-1,) + (1,) * (tiles.ndim - 1))
    return (0.5 + 0.5 * tiles / m).astype(np.float32)
