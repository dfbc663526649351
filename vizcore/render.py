"""Turning arrays into pictures: normalisation, colour maps, overlays and grids (uint8 out)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def normalize(a: np.ndarray, mode: str = "minmax", eps: float = 1e-12) -> np.ndarray:
    """Scale an array to [0, 1].

    Args:
        a: Any real array.
        mode: ``"minmax"`` (min -> 0, max -> 1) or ``"symmetric"`` (0 -> 0.5, +-max|a| -> 1/0).
    """
    a = np.asarray(a, dtype=np.float32)
    if mode == "symmetric":
        m = float(np.max(np.abs(a))) if a.size else 0.0
        return (0.5 + 0.5 * a / m) if m > eps else np.full_like(a, 0.5)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    return (a - lo) / (hi - lo) if hi - lo > eps else np.zeros_like(a)


def colorize(a01: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """Map values in [0, 1] of shape (H, W) to uint8 RGB (H, W, 3) with a matplotlib colour map."""
    from matplotlib import colormaps

    rgba = colormaps[cmap](np.clip(a01, 0, 1))
    return (rgba[..., :3] * 255).astype(np.uint8)


def to_rgb(img: np.ndarray) -> np.ndarray:
    """uint8 (H, W), (H, W, 1) or (H, W, 3) -> uint8 (H, W, 3)."""
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[..., None]
    return np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img


def overlay(image: np.ndarray, heatmap01: np.ndarray, alpha: float = 0.5,
            cmap: str = "jet") -> np.ndarray:
    """Blend a [0, 1] heatmap (resized to the image if needed) over a uint8 image."""
    rgb = to_rgb(image).astype(np.float32)
    heat = heatmap01
    if heat.shape != rgb.shape[:2]:
        heat = np.asarray(Image.fromarray(np.float32(heat)).resize(
            (rgb.shape[1], rgb.shape[0]), Image.BILINEAR))
    out = (1 - alpha) * rgb + alpha * colorize(heat, cmap).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def upscale(img: np.ndarray, min_side: int = 224, resample=Image.NEAREST) -> np.ndarray:
    """Enlarge a small uint8 image by an integer factor so it shows crisply on screen."""
    img = np.asarray(img)
    factor = max(1, int(np.ceil(min_side / max(1, min(img.shape[:2])))))
    if factor == 1:
        return img
    squeeze = img.ndim == 3 and img.shape[-1] == 1
    pil = Image.fromarray(img[..., 0] if squeeze else img)
    out = np.asarray(pil.resize((img.shape[1] * factor, img.shape[0] * factor), resample))
    return out[..., None] if squeeze else out


def grid(tiles: np.ndarray, cols: int | None = None, pad: int = 1, pad_value: int = 255,
         normalize_each: bool = True, cmap: str | None = None) -> np.ndarray:
    """Lay out N tiles (N, h, w) or (N, h, w, 3) as one uint8 image.

    Args:
        tiles: float or uint8 tiles.
        cols: Columns; default ``ceil(sqrt(N))``.
        pad: Pixels between tiles.
        pad_value: Grey level of the padding.
        normalize_each: Min-max normalise every tile on its own (else over all tiles).
        cmap: Colour map for single-channel tiles (``None`` = grey).
    """
    tiles = np.asarray(tiles)
    if tiles.ndim == 4 and tiles.shape[-1] == 1:
        tiles = tiles[..., 0]
    n = len(tiles)
    if n == 0:
        return np.full((1, 1, 3), pad_value, np.uint8)
    if tiles.dtype != np.uint8:
        tiles = (np.stack([normalize(t) for t in tiles]) if normalize_each
                 else normalize(tiles))
        if tiles.ndim == 3 and cmap:
            tiles = np.stack([colorize(t, cmap) for t in tiles])
        else:
            tiles = (tiles * 255).astype(np.uint8)
    if tiles.ndim == 3:
        tiles = np.repeat(tiles[..., None], 3, axis=-1)
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    h, w = tiles.shape[1:3]
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), pad_value, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y : y + h, x : x + w] = t
    return out


def png_bytes(img: np.ndarray) -> bytes:
    """Encode a uint8 image as PNG bytes (for downloads)."""
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def npy_bytes(a: np.ndarray) -> bytes:
    """Serialise an array as .npy bytes (for downloads)."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(a))
    return buf.getvalue()
