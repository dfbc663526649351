"""An embedding as a table: one row per image with its id, classes, confidence and positions,
and the CSV bytes of it (the Embeddings page's download and ``python -m vizcore embed``)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np


def embedding_frame(ids: Sequence, labels: np.ndarray | None, label_names: Sequence[str] | None,
                    probs: np.ndarray, class_names: Sequence[str],
                    coords: Mapping[str, np.ndarray], id_name: str = "index"):
    """A pandas DataFrame: one row per image with id, true and predicted class, and positions.

    Args:
        ids: Dataset indices or file names.
        labels: True class per image (-1 or None when unknown).
        label_names: Names for ``labels``.
        probs: (N, K) probabilities.
        class_names: The model's class names.
        coords: Column prefix -> (N, 2) positions, e.g. ``{"": tsne, "pixels_": pix}`` gives
            columns x, y, pixels_x, pixels_y.
    """
    import pandas as pd

    pred = probs.argmax(axis=1)
    cols: dict = {id_name: list(ids)}
    if labels is not None:
        labels = np.asarray(labels)
        cols["label"] = labels
        cols["label_name"] = [label_names[i] if (label_names is not None and i >= 0) else ""
                              for i in labels]
    cols["predicted"] = pred
    cols["predicted_name"] = [class_names[i] for i in pred]
    cols["confidence"] = probs.max(axis=1).round(5)
    for prefix, xy in coords.items():
        cols[f"{prefix}x"] = np.asarray(xy)[:, 0].round(5)
        cols[f"{prefix}y"] = np.asarray(xy)[:, 1].round(5)
    return pd.DataFrame(cols)


def csv_bytes(frame) -> bytes:
    """CSV text of a DataFrame as UTF-8 bytes (for downloads)."""
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return buf.getvalue().encode()
