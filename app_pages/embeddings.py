"""Embeddings: PCA / t-SNE / UMAP maps of pixels and of a layer's features, linked to the images."""

import time

import numpy as np
import streamlit as st

from ui import embeddings as figs
from ui import state, widgets
from vizcore import data, embed, render

st.title("Embeddings: the dataset through the network")
widgets.note(
    "Each dot is one image, placed so that images with similar features (raw pixels on the left, "
    "a layer's activations on the right) land close together; colour is the true class and a "
    "cross marks a wrong prediction. Neighbourhoods are meaningful, but the distances between "
    "far-apart clusters, their sizes and the axes of a t-SNE or UMAP map are not; the numbers "
    "under the maps say how faithfully the 2-D picture keeps the original neighbours.")

SEL = "emb_selected"
info = state.current_model()
layers = embed.feature_layers(info.model)
default_layer = embed.penultimate_layer(info.model)
DATASETS = {k: data.DATASET_LABELS[k] for k in ("fashion_mnist", "digits", "mnist")}
default_ds = "fashion_mnist" if info.class_names == data.FASHION_CLASSES else (
    "digits" if info.num_classes == 10 else "fashion_mnist")

# ------------------------------------------------------------------------ parameters
with st.form("emb_form"):
    c1, c2, c3, c4 = st.columns([3, 3, 3, 2])
    ds_name = c1.selectbox("Dataset", list(DATASETS), format_func=DATASETS.get,
                           index=list(DATASETS).index(default_ds), key="emb_dataset")
    n = c2.slider("Images (balanced sample)", embed.MIN_SAMPLE, embed.MAX_SAMPLE,
                  embed.DEFAULT_SAMPLE, step=100, key="emb_n",
                  help="The same number of images from every class; more images take longer.")
    layer = c3.selectbox("Feature space", layers, index=layers.index(default_layer),
                         key=f"emb_layer_{info.key}",
                         help="'pixels' = the raw image; a layer = what the network computed "
                              "there. The default is the layer feeding the classifier.")
    method = c4.radio("Projection", list(embed.METHODS), format_func=embed.METHODS.get,
                      index=1, key="emb_method")
    with st.expander("Parameters"):
        p1, p2, p3, p4, p5, p6 = st.columns(6)
        perplexity = p1.slider("t-SNE perplexity", 5, 100, 30, key="emb_perplexity",
                               help="Roughly how many neighbours each point tries to keep.")
        iterations = p2.slider("t-SNE iterations", 100, 1500, 500, step=50, key="emb_iters")
        every = p3.slider("Animation: snapshot every k iterations", 5, 100, 20, step=5,
                          key="emb_every")
        n_neighbors = p4.slider("UMAP neighbours", 2, 100, 15, key="emb_nn")
        min_dist = p5.slider("UMAP min. distance", 0.0, 1.0, 0.1, step=0.05, key="emb_md")
        seed = p6.number_input("Seed", 0, 10_000, 0, key="emb_seed")
    compare = st.checkbox("Also map the raw pixels, side by side", True, key="emb_compare")
    st.form_submit_button("Compute the maps", type="primary", icon=":material/scatter_plot:")

k = st.slider("Neighbours k (for the quality numbers and the thumbnails)", 3, 30, 10,
              key="emb_k")
params = {"pca": {}, "tsne": {"perplexity": float(perplexity), "iterations": int(iterations),
                              "snapshot_every": int(every)},
          "umap": {"n_neighbors": int(n_neighbors), "min_dist": float(min_dist)}}[method]
if info.input_shape != (28, 28, 1):
    st.warning(f"{info.label} reads {info.input_shape[0]}x{info.input_shape[1]} images: every "
               "28x28 image is enlarged first and each forward pass is slow on this CPU. Start "
               "with 300 images.")


# ------------------------------------------------------------------------ cached core calls
# The progress bar is created inside each cached function, so that a cache hit replays it
# (created, then emptied) instead of touching an element made outside.
def _bar(text: str):
    """A progress bar and a callback that updates it at most every 0.4 s (each update re-renders
    the page in the browser, which competes with the computation for the CPU)."""
    bar = st.progress(0.0, text=text)
    last = [0.0]

    def update(f: float, msg: str) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.4 or f >= 1.0:
            last[0] = now
            bar.progress(min(1.0, max(0.0, f)), text=msg)

    return bar, update


@st.cache_data(show_spinner=False, max_entries=6)
def _features(model_key: str, _info, ds_name: str, n: int, seed: int, layer: str):
    bar, progress = _bar("Reading the features...")
    try:
        ds = state.load_dataset(ds_name)
        idx = embed.sample_indices(ds, n, seed)
        fs = embed.extract_features(_info, ds.images[idx], [layer, embed.PIXELS],
                                    progress=progress)
    finally:
        bar.empty()
    return idx, fs


@st.cache_data(show_spinner=False, max_entries=16)
def _project(model_key: str, ds_name: str, n: int, seed: int, layer: str, method: str,
             params: tuple, k: int, _X, _labels):
    what = "raw pixels" if layer == embed.PIXELS else f"layer {layer}"
    bar, progress = _bar(f"{embed.METHODS[method]} of {what}...")
    try:
        proj = embed.project(_X, method, seed=seed, progress=lambda f, m: progress(
            0.9 * f, f"{what}: {m}"), **dict(params))
        progress(0.95, f"{what}: trustworthiness and k-NN accuracy...")
        qual = embed.quality(_X, proj.coords, _labels, k=k, seed=seed)
    finally:
        bar.empty()
    return proj, qual


@st.cache_data(show_spinner="Grad-CAM...", max_entries=64)
def _gradcam(model_key: str, _info, ds_name: str, index: int):
    from vizcore.explain import explain

    ds = state.load_dataset(ds_name)
    x = _info.preprocess(embed.model_images(_info, ds.images[index: index + 1]))[0]
    return explain(_info, x, "gradcam").heatmap


try:
    ds = state.load_dataset(ds_name)
except data.DataUnavailable as exc:
    st.error(f"{exc}")
    st.stop()
spaces = [layer] + ([embed.PIXELS] if compare and layer != embed.PIXELS else [])
try:
    idx, fs = _features(info.key, info, ds_name, n, int(seed), layer)
    labels = ds.labels[idx]
    results = {space: _project(info.key, ds_name, n, int(seed), space, method,
                               tuple(sorted(params.items())), k, fs.values[space], labels)
               for space in spaces}
except (ValueError, KeyError, TypeError, MemoryError) as exc:
    st.error(f"Could not compute the map: {exc}. Fix: choose fewer images, another layer or "
             "the default parameters.")
    st.stop()

same_classes = list(ds.class_names) == list(info.class_names)
preds, conf = fs.predictions, fs.confidence
# the selection belongs to one sample: reset it when the sample changes
sig = (info.key, ds_name, len(idx), int(seed))
prev_sig, prev_sel = st.session_state.get("emb_sig"), st.session_state.get(SEL)
st.session_state["emb_sig"] = sig
if prev_sig not in (None, sig) or prev_sel is None or not 0 <= prev_sel < len(idx):
    wrong = np.flatnonzero(preds != labels) if same_classes else np.array([], int)
    st.session_state[SEL] = int(wrong[0]) if len(wrong) else 0
selected = int(st.session_state[SEL])
st.session_state["emb_pick"] = selected  # the number box below follows clicks on the maps


def _on_select(chart_key: str) -> None:
    event = st.session_state.get(chart_key)
    pos = embed.point_from_selection(event.get("selection") if event else None)
    if pos is not None:
        st.session_state[SEL] = pos


# ------------------------------------------------------------------------ the maps
acc = float((preds == labels).mean()) if same_classes else None
st.caption(f"{len(idx):,} images of {ds.source}" + (
    f"; the model classifies {acc:.1%} of them correctly" if acc is not None else
    "; the dataset's classes are not the model's, so errors are not marked")
    + ". Click a point (or pick one below) to see its image; the ring marks it on both maps.")
cols = st.columns(len(spaces))
order = list(reversed(spaces))  # pixels on the left, the layer on the right
for col, space in zip(cols, order):
    proj, qual = results[space]
    what = "raw pixels" if space == embed.PIXELS else f"layer `{space}`"
    red = fs.reductions.get(space)
    with col:
        st.subheader(f"{embed.METHODS[method]} of {what}")
        fig = figs.scatter_figure(proj.coords, labels, ds.class_names, preds, conf,
                                  info.class_names, idx, selected, same_classes)
        key = f"emb_chart_{space}"
        st.plotly_chart(fig, width="stretch", key=key, on_select=lambda key=key: _on_select(key),
                        selection_mode="points")
        dims = fs.values[space].shape[1]
        st.caption(f"{dims:,} features per image" + (f" ({red})" if red else "")
                   + f"; {proj.seconds:.1f} s"
                   + (f"; the two axes explain {sum(proj.explained_variance):.0%} of the variance"
                      if proj.explained_variance else ""))
        m1, m2, m3 = st.columns(3)
        m1.metric("Trustworthiness", f"{qual.trustworthiness:.3f}",
                  help="Venna and Kaski (2001): 1.0 when every 2-D neighbour is a true "
                       "neighbour in the original space.")
        m2.metric(f"{qual.k}-NN accuracy in 2-D", f"{qual.knn_2d:.1%}",
                  help="How often the majority class of a point's 2-D neighbours is its class.")
        m3.metric("... in the original space", f"{qual.knn_original:.1%}",
                  help="The same with neighbours in the full feature space.")

# ------------------------------------------------------------------------ the selected image
st.header("The selected image")
st.number_input("Sample position (or click a point above)", 0, len(idx) - 1, key="emb_pick",
                on_change=lambda: st.session_state.update({SEL: st.session_state["emb_pick"]}))
i = int(idx[selected])
raw = ds.images[i]
left, mid, right = st.columns([2, 3, 2])
with left:
    st.image(render.upscale(raw, 224), width=224,
             caption=f"#{i}: true class {ds.class_names[labels[selected]]}")
with mid:
    st.plotly_chart(widgets.topk_figure(info, fs.probs[selected], 3,
                                        int(labels[selected]) if same_classes else None,
                                        "Prediction"), width="stretch")
with right:
    try:
        heat = _gradcam(info.key, info, ds_name, i)
        cam = render.overlay(embed.model_images(info, raw[None])[0], heat, 0.5)
        st.image(render.upscale(cam, 224), width=224,
                 caption="Grad-CAM: where the evidence for the predicted class lies")
        widgets.downloads(f"gradcam_{ds_name}_{i}", cam, heat, key="emb_cam")
    except ImportError:
        st.info("Grad-CAM will appear here once the explanation package is installed.")
    except ValueError as exc:
        st.warning(f"No Grad-CAM for this model: {exc}")

for space in spaces:
    nb, dist = embed.nearest_neighbours(fs.values[space], selected, k)
    what = "pixel space" if space == embed.PIXELS else f"`{space}` feature space"
    agree = int((labels[nb] == labels[selected]).sum())
    st.markdown(f"**{k} nearest neighbours in {what}**: {agree} of {k} share its class")
    st.image([render.upscale(ds.images[int(idx[j])], 84) for j in nb], width=84,
             caption=[f"{ds.class_names[labels[j]]} ({d:.2g})" for j, d in zip(nb, dist)])

# ------------------------------------------------------------------------ convergence
proj, _ = results[layer]
if proj.snapshots is not None and len(proj.snapshots) > 1:
    st.header("How t-SNE got there")
    st.caption(f"Positions every {proj.params['snapshot_every']} iterations, each frame rescaled "
               f"to fit: the first {proj.exaggeration_iters} iterations exaggerate the "
               "attractions so that clusters form, then the map relaxes. Press Play.")
    st.plotly_chart(figs.animation_figure(proj.snapshots, proj.snapshot_iters, labels,
                                          ds.class_names, proj.exaggeration_iters,
                                          seed=int(seed)),
                    width="stretch", key="emb_anim")

# ------------------------------------------------------------------------ downloads
coords = {"": results[layer][0].coords}
if embed.PIXELS in results and layer != embed.PIXELS:
    coords["pixels_"] = results[embed.PIXELS][0].coords
frame = embed.embedding_frame(idx.tolist(), labels, ds.class_names, fs.probs, info.class_names,
                              coords)
d1, d2 = st.columns(2)
d1.download_button("Download the embedding (CSV)", embed.csv_bytes(frame),
                   f"embedding_{method}_{layer}_{ds_name}_{len(idx)}.csv", "text/csv",
                   key="emb_csv", icon=":material/download:")
d2.download_button("Download the coordinates (.npy)", render.npy_bytes(coords[""]),
                   f"embedding_{method}_{layer}_{ds_name}_{len(idx)}.npy",
                   "application/octet-stream", key="emb_npy", icon=":material/download:")

# UMAP's one-off numba compile (30-40 s of CPU) is not started speculatively: on a 2-core
# machine it would slow every other page. A first UMAP run reports the compile in its progress
# bar; set session_state["emb_warmup"] = True to compile it in the background instead.
if st.session_state.get("emb_warmup", False) and not embed.umap_ready():
    embed.warm_umap()
