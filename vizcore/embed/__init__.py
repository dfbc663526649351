"""The dataset seen through the network: PCA, t-SNE and UMAP maps of pixels and of layer features.

Pipeline: a class-balanced, seeded sample of images -> features (raw pixels, or any layer's
activations; the penultimate layer by default) -> a 2-D projection -> quality numbers
(trustworthiness, k-NN accuracy in 2-D versus in the original space) and nearest neighbours in
feature space.

Modules: :mod:`~vizcore.embed.features` (sampling, feature layers, extraction),
:mod:`~vizcore.embed.projection` (PCA, t-SNE, UMAP, their threads and the UMAP warm-up),
:mod:`~vizcore.embed.quality` (trustworthiness, k-NN accuracy, neighbours),
:mod:`~vizcore.embed.tables` (the CSV table) and :mod:`~vizcore.embed.cli`
(``python -m vizcore embed``). Tuning constants (``MAX_DIMS``, ``BH_BELOW``, ...) stay in the
module that uses them; set them there, not here.

Nothing here prints or touches Streamlit; long steps report progress through an optional
``progress(fraction, message)`` callback, always called from the caller's thread.
"""

from vizcore.embed.cli import add_embed_arguments, embed_command, folder_images
from vizcore.embed.features import (
    DEFAULT_SAMPLE,
    MAX_SAMPLE,
    MIN_SAMPLE,
    PIXELS,
    FeatureSet,
    extract_features,
    feature_layers,
    model_images,
    output_layer,
    penultimate_layer,
    sample_indices,
)
from vizcore.embed.projection import (
    DEFAULTS,
    METHODS,
    Projection,
    method_params,
    pca_reduce,
    project,
    tsne_threads,
    umap_ready,
    warm_umap,
)
from vizcore.embed.quality import Quality, exact_knn, nearest_neighbours, quality
from vizcore.embed.tables import csv_bytes, embedding_frame

__all__ = [
    "DEFAULTS",
    "DEFAULT_SAMPLE",
    "MAX_SAMPLE",
    "METHODS",
    "MIN_SAMPLE",
    "PIXELS",
    "FeatureSet",
    "Projection",
    "Quality",
    "add_embed_arguments",
    "csv_bytes",
    "embed_command",
    "embedding_frame",
    "exact_knn",
    "extract_features",
    "feature_layers",
    "folder_images",
    "method_params",
    "model_images",
    "nearest_neighbours",
    "output_layer",
    "pca_reduce",
    "penultimate_layer",
    "project",
    "quality",
    "sample_indices",
    "tsne_threads",
    "umap_ready",
    "warm_umap",
]
