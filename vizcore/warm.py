"""Warm a server's caches before class: ``python -m vizcore warm --preset NAME``.

A preset names what a lesson shows: the model, the dataset images students start from, the
attribution methods, and the embedding. Warming

1. compiles UMAP's numba code into numba's on-disk cache (once per machine, see
   :func:`vizcore.embed.projection.import_umap`) when the preset uses UMAP;
2. computes every map and projection into the on-disk result store (:mod:`vizcore.store`),
   keyed by content, exactly as the pages request them, so the server's first student reads
   them instead of waiting.

Presets are plain data (:data:`PRESETS`); ``--list`` prints them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class WarmPreset:
    """What one lesson shows, to precompute.

    Attributes:
        name: Preset key.
        description: One line for ``--list``.
        model: Model registry key (``"fashion_vgg"``, ``"gap_cnn"``, ``"vgg16-random"``...).
        dataset: Dataset the input images and the embedding come from.
        images: Dataset indices of the input images students pick (Home's default is 0).
        methods: Attribution methods with their page-default parameters.
        embeddings: Projection methods for the Embeddings page's default view.
        sample: Images in the embedding (the page's default is 2,000).
    """

    name: str
    description: str
    model: str = "fashion_vgg"
    dataset: str = "fashion_mnist"
    images: tuple[int, ...] = tuple(range(8))
    methods: tuple[str, ...] = ("gradcam", "smoothgrad", "occlusion")
    embeddings: tuple[str, ...] = ("tsne",)
    sample: int = 2000
    extra: dict = field(default_factory=dict)
    units: tuple[tuple[str, int], ...] = ()  # (layer, unit): activation maximization + patches


PRESETS: dict[str, WarmPreset] = {p.name: p for p in (
    WarmPreset("class", "the class script: Home, Explain (Grad-CAM, SmoothGrad), Occlusion, "
               "Embeddings (t-SNE of 2,000 images), default Fashion-MNIST CNN"),
    WarmPreset("attribution", "every attribution method on the first 8 test images, "
               "Fashion-MNIST CNN", methods=("saliency", "smoothgrad", "integrated_gradients",
                                           "gradcam", "gradcam_plus_plus", "score_cam",
                                           "lrp_composite", "occlusion"), embeddings=()),
    WarmPreset("embeddings", "t-SNE and UMAP of 2,000 images (compiles UMAP once per machine)",
               images=(), methods=(), embeddings=("tsne", "umap")),
)}


def lesson_preset(lesson) -> WarmPreset:
    """What a lesson's tour shows (:mod:`vizcore.lessons`), as a preset: its images explained
    with its methods (and occlusion), the embedding, the unit's animation and patches."""
    from vizcore.lessons import parse_image

    images = [parse_image(i) for i in lesson.images]
    dataset = images[0][0]
    methods = list(lesson.methods) + (["occlusion"] if "occlusion" in lesson.steps else [])
    units: tuple = ()
    if {"unit", "patches"} & set(lesson.steps):
        units = ((lesson.unit_layer or "", lesson.unit_index),)
    return WarmPreset(f"lesson:{lesson.name}", lesson.title, lesson.model, dataset,
                      tuple(i for d, i in images if d == dataset), tuple(methods),
                      ("tsne",) if "embedding" in lesson.steps else (), units=units)


def input_image(info, dataset: str, index: int) -> np.ndarray:
    """Dataset image ``index`` as the app feeds it to ``info``'s model (model range)."""
    from vizcore import data

    ds = data.load_dataset(dataset)
    i = int(index) % len(ds)
    img = ds.extra["full"][i] if "full" in ds.extra else ds.images[i]
    h, w, c = info.input_shape
    return info.preprocess(data.fit_image(img, (h, w), c, invert=False if c == 1 else None))


def embedding_params(method: str) -> dict:
    """The Embeddings page's default parameters of ``method`` (its sliders' defaults)."""
    return {"pca": {}, "tsne": {"perplexity": 30.0, "iterations": 500, "snapshot_every": 20},
            "umap": {"n_neighbors": 15, "min_dist": 0.1}}[method]


def warm(preset: WarmPreset, log: Callable[[str], None] = print) -> dict:
    """Precompute everything ``preset`` shows; returns {step: seconds}."""
    from vizcore import data, embed, models, store

    if store.store_dir() is None:
        log("the result store is off (VIZCORE_STORE=off): only compiled code is warmed")
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    if preset.model in models.BUILTIN:
        info = models.load_builtin(preset.model)
    else:
        info = models.load_vgg16("random" if preset.model == "vgg16-random" else "auto")
    times["load model"] = time.perf_counter() - t0
    log(f"model {info.label}: {times['load model']:.1f} s")
    from vizcore.explain import REGISTRY

    for i in preset.images:
        x = input_image(info, preset.dataset, i)
        for m in preset.methods:
            if not REGISTRY[m].applies_to(info)[0]:
                continue
            t0 = time.perf_counter()
            store.explanation(info, x, m)
            times[f"{m} #{i}"] = time.perf_counter() - t0
        log(f"image #{i}: {', '.join(preset.methods)} done")
    for layer, unit in preset.units:
        _warm_unit(info, layer, unit, times, log)
    if preset.embeddings:
        if "umap" in preset.embeddings:
            t0 = time.perf_counter()
            embed.warm_umap(background=False)
            times["umap compile"] = time.perf_counter() - t0
            log(f"UMAP compiled: {times['umap compile']:.1f} s")
        ds = data.load_dataset(preset.dataset)
        layer = embed.penultimate_layer(info.model)
        idx = embed.sample_indices(ds, preset.sample, 0)
        fs = embed.extract_features(info, ds.images[idx], [layer, embed.PIXELS])
        for method in preset.embeddings:
            for space in (layer, embed.PIXELS):
                t0 = time.perf_counter()
                store.projection(fs.values[space], ds.labels[idx], method, 0,
                                 embedding_params(method))
                times[f"{method} {space}"] = time.perf_counter() - t0
                log(f"{embed.METHODS[method]} of {space}: {times[f'{method} {space}']:.1f} s")
    return times


def _warm_unit(info, layer: str, unit: int, times: dict, log) -> None:
    """The unit page's (and the tour's) activation maximization and dataset patches."""
    from vizcore import actmax, patches, store

    convs = info.layers_of(actmax.CONV_KINDS)
    layer = layer if layer in convs else convs[-1]
    t0 = time.perf_counter()
    store.maximization(info, layer, unit, actmax.default_params(info))
    times[f"actmax {layer}:{unit}"] = time.perf_counter() - t0
    images, data_key, _ = patches.dataset_images(info.input_shape)  # those the page scans
    t0 = time.perf_counter()
    store.layer_peaks(info, layer, images, data_key)
    times[f"patches {layer}"] = time.perf_counter() - t0
    log(f"unit {unit} of {layer}: activation maximization and patches done")
