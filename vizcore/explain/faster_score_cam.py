"""Faster Score-CAM: Score-CAM over only the ``max_n`` channels that vary most across the image
(the channel selection of tf-keras-vis's ``max_N``)."""

from __future__ import annotations

import numpy as np

from vizcore.explain.base import Attribution, Engine, Param, Progress, register
from vizcore.explain.cam_base import CAM_WEAK, INTERP
from vizcore.explain.score_cam import BATCH, ScoreCam


@register
class FasterScoreCam(ScoreCam):
    """Score-CAM with a channel selection."""

    key = "faster_score_cam"
    name = "Faster Score-CAM"
    paper = ("Wang et al. 2020, arXiv:1910.01279, with the channel selection of Faster Score-CAM "
             "(tabayashi0117, github.com/tabayashi0117/Score-CAM)")
    note = ("Score-CAM using only the N feature maps that vary most across the image. About 5x "
            "faster, but only roughly like Score-CAM (rank correlation 0.64 on the shipped "
            "VGG-style CNN, 0.87 on the GAP CNN) and less faithful where they differ, because "
            "the ignored channels are lost. Randomising the GAP CNN's output layer leaves its "
            "map 0.99 similar: it shows where the chosen channels fire more than what decides "
            "the class." + CAM_WEAK)
    cost = "1 + N forward passes, batched"
    params = (
        Param("max_n", 10, "int", 1, 2048, help="Channels to probe (Faster Score-CAM: 10)."),
        Param("rank_by", "std", "choice", choices=("std", "mean"),
              help="Pick channels by spatial standard deviation (the original) or mean "
                   "activation."),
        BATCH,
        INTERP,
    )

    def run(self, engine: Engine, x: np.ndarray, target: int, layer: str | None,
            progress: Progress = None, max_n: int = 10, rank_by: str = "std",
            batch_size: int = 256, interpolation: str = "bilinear") -> Attribution:
        """Score-CAM's run with ``max_n`` channels."""
        return super().run(engine, x, target, layer, progress, batch_size, interpolation,
                           max_n, rank_by)
