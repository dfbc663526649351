"""What the Home, Architecture and Filters pages show about the network: the prediction's
uncertainty, the layer table, kernels and feature-map grids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ui import cache, widgets
from vizcore import render
from vizcore.models import ModelInfo


def entropy_caption(probs: np.ndarray) -> str:
    """The prediction's entropy beside its two extremes."""
    entropy = float(-(probs * np.log(probs + 1e-12)).sum())
    return (f"Entropy of the prediction: {entropy:.2f} nats (0 = certain, "
            f"{np.log(len(probs)):.2f} = uniform).")


def layer_frame(rows: list[dict]) -> tuple[pd.DataFrame, int, int]:
    """(one row per layer with its share of the parameters, total parameters, trainable ones)."""
    total = sum(r["parameters"] for r in rows)
    trainable = sum(r["parameters"] for r in rows if r["trainable"])
    df = pd.DataFrame([{k: v for k, v in r.items() if k != "inbound"} for r in rows])
    df["share of parameters"] = df["parameters"] / max(total, 1)
    return df, total, trainable


def show_kernels(info: ModelInfo) -> None:
    """The first conv layer's kernels as one grid (0 = mid-grey), with downloads."""
    name, tiles = cache.first_kernels(info.key, info.model)
    st.caption(f"{len(tiles)} kernels of layer `{name}`, each {tiles.shape[1]}x{tiles.shape[2]}"
               + (" (RGB)" if tiles.ndim == 4 else " (mean over input channels)"))
    cols = min(16, len(tiles))
    kgrid = render.grid(tiles, cols=cols, normalize_each=False)
    st.image(render.upscale(kgrid, 480), width=min(720, 40 * cols + 40))
    widgets.downloads(f"{info.model.name}_{name}_kernels", kgrid, tiles, key="kernels")


def silent_maps(maps: np.ndarray) -> int:
    """How many of the (C, h, w) feature maps are all zero (or below)."""
    return int((maps.reshape(len(maps), -1).max(axis=1) <= 0).sum())


def show_feature_grid(info: ModelInfo, layer: str, maps: np.ndarray, order, cmap: str) -> None:
    """The maps ``order`` of ``layer`` in a square grid, each scaled on its own, and downloads."""
    cols = int(np.ceil(np.sqrt(len(order))))
    fgrid = render.grid(maps[order], cols=cols, cmap=None if cmap == "gray" else cmap)
    st.image(render.upscale(fgrid, 560), width="stretch")
    widgets.downloads(f"{info.model.name}_{layer}_maps", fgrid, maps, key="maps")


def map_overlay(raw: np.ndarray, fmap: np.ndarray) -> np.ndarray:
    """One feature map, normalised, laid over the input (uint8 RGB)."""
    return render.overlay(raw, render.normalize(fmap), 0.5, "viridis")


def active_units(act: np.ndarray) -> int:
    """How many units have an activation above 0."""
    return int((act > 0).sum())
