"""Embeddings: PCA / t-SNE / UMAP maps of pixels and of a layer's features, linked to the images."""

import streamlit as st

from ui import cache, jobs, links, state, widgets
from ui import embeddings as figs
from ui import embeddings_view as view
from ui.selection import point_from_selection
from vizcore import data, embed

st.title("Embeddings: the dataset through the network")
widgets.note(
    "Each dot is one image, placed so that images with similar features (raw pixels on the left, "
    "a layer's activations on the right) land close together; colour is the true class and a "
    "cross marks a wrong prediction. Neighbourhoods are meaningful, but the distances between "
    "far-apart clusters, their sizes and the axes of a t-SNE or UMAP map are not; the numbers "
    "under the maps say how faithfully the 2-D picture keeps the original neighbours.")

SEL = view.SELECTED
info = state.current_model()
layers = embed.feature_layers(info.model)
default_layer = embed.penultimate_layer(info.model)
DATASETS = {k: data.DATASET_LABELS[k] for k in ("fashion_mnist", "digits", "mnist")}
default_ds = "fashion_mnist" if info.class_names == data.FASHION_CLASSES else (
    "digits" if info.num_classes == 10 else "fashion_mnist")

fields = view.link_fields(info, layers, default_layer, list(DATASETS), default_ds)
links.restore(fields)

# ------------------------------------------------------------------------ parameters
with st.form("emb_form"):
    c1, c2, c3, c4 = st.columns([3, 3, 3, 2])
    ds_name = c1.selectbox("Dataset", list(DATASETS), format_func=DATASETS.get,
                           index=list(DATASETS).index(default_ds), key="emb_dataset")
    n = c2.slider("Images (balanced sample)", embed.MIN_SAMPLE, embed.MAX_SAMPLE,
                  view.default_sample(info), step=100, key="emb_n",
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
state.sync_link(fields)
params = {"pca": {}, "tsne": {"perplexity": float(perplexity), "iterations": int(iterations),
                              "snapshot_every": int(every)},
          "umap": {"n_neighbors": int(n_neighbors), "min_dist": float(min_dist)}}[method]
if info.input_shape != (28, 28, 1):
    st.warning(f"{info.label} reads {info.input_shape[0]}x{info.input_shape[1]} images: every "
               "28x28 image is enlarged first and each forward pass is slow on this CPU, so the "
               "page starts with 300 images.")


try:
    ds = cache.load_dataset(ds_name)
except data.DataUnavailable as exc:
    st.error(f"{exc}")
    st.stop()
spaces = [layer] + ([embed.PIXELS] if compare and layer != embed.PIXELS else [])
try:
    idx, fs = cache.features(info.key, info, ds_name, n, int(seed), layer)
    labels = ds.labels[idx]
    results = {space: cache.projection(info.key, ds_name, n, int(seed), space, method,
                                       tuple(sorted(params.items())), k, fs.values[space],
                                       labels)
               for space in spaces}
except jobs.Cancelled:
    st.info(jobs.CANCELLED_NOTICE, icon=":material/block:")
    st.stop()
except (ValueError, KeyError, TypeError, MemoryError) as exc:
    st.error(f"Could not compute the map: {exc}. Fix: choose fewer images, another layer or "
             "the default parameters.")
    st.stop()

same_classes = list(ds.class_names) == list(info.class_names)
selected = view.current_selection((info.key, ds_name, len(idx), int(seed)), fs.predictions,
                                  labels, same_classes)
st.session_state["emb_pick"] = selected  # the number box below follows clicks on the maps


def _on_select(chart_key: str) -> None:
    event = st.session_state.get(chart_key)
    pos = point_from_selection(event.get("selection") if event else None)
    if pos is not None:
        st.session_state[SEL] = pos


# ------------------------------------------------------------------------ the maps
st.caption(view.sample_caption(ds, len(idx), fs.predictions, labels, same_classes))
cols = st.columns(len(spaces))
for col, space in zip(cols, reversed(spaces)):  # pixels on the left, the layer on the right
    proj, qual = results[space]
    with col:
        st.subheader(f"{embed.METHODS[method]} of {view.space_name(space)}")
        fig = figs.scatter_figure(proj.coords, labels, ds.class_names, fs.predictions,
                                  fs.confidence, info.class_names, idx, selected, same_classes)
        key = f"emb_chart_{space}"
        st.plotly_chart(fig, width="stretch", key=key, on_select=lambda key=key: _on_select(key),
                        selection_mode="points")
        view.show_quality(fs, space, proj, qual)

# ------------------------------------------------------------------------ the selected image
st.header("The selected image")
st.number_input("Sample position (or click a point above)", 0, len(idx) - 1, key="emb_pick",
                on_change=lambda: st.session_state.update({SEL: st.session_state["emb_pick"]}))
view.show_selected(info, ds, ds_name, idx, labels, fs, selected, same_classes)
view.show_neighbours(ds, idx, labels, fs, spaces, selected, k)

# ------------------------------------------------------------------------ convergence
proj, _ = results[layer]
if proj.snapshots is not None and len(proj.snapshots) > 1:
    st.header("How t-SNE got there")
    if st.toggle("Show the optimisation as an animation", False, key="emb_anim_on",
                 help="Off by default: the animation holds every snapshot of every point, the "
                      "heaviest figure of the app for a browser to draw."):
        st.caption(f"Positions every {proj.params['snapshot_every']} iterations, each frame "
                   f"rescaled to fit: the first {proj.exaggeration_iters} iterations exaggerate "
                   "the attractions so that clusters form, then the map relaxes. Press Play.")
        st.plotly_chart(figs.animation_figure(proj.snapshots, proj.snapshot_iters, labels,
                                              ds.class_names, proj.exaggeration_iters,
                                              seed=int(seed)),
                        width="stretch", key="emb_anim")

# ------------------------------------------------------------------------ downloads
view.downloads(info, ds, ds_name, idx, labels, fs, results, layer, method)

# UMAP's one-off numba compile (30-40 s of CPU) is not started speculatively: on a 2-core
# machine it would slow every other page. A first UMAP run reports the compile in its progress
# bar; set session_state["emb_warmup"] = True to compile it in the background instead.
if st.session_state.get("emb_warmup", False) and not embed.umap_ready():
    embed.warm_umap()
