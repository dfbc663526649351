"""What the Embeddings page shows beside its maps: the linked selection, the quality numbers,
the selected image with its prediction, Grad-CAM and neighbours, and the downloads. The maps'
figures are in :mod:`ui.embeddings`; the computations are cached in :mod:`ui.cache`."""

from __future__ import annotations

import numpy as np
import streamlit as st

from ui import cache, figures, jobs, widgets
from vizcore import embed, render

#: Session key of the selected sample position (set by clicks on the maps and the number box).
SELECTED = "emb_selected"


def current_selection(sig: tuple, preds: np.ndarray, labels: np.ndarray,
                      same_classes: bool) -> int:
    """The selected sample position. The selection belongs to one sample (``sig``): when the
    sample changes, or nothing valid is selected, it moves to the first wrong prediction (else
    the first image)."""
    ss = st.session_state
    prev_sig, prev_sel = ss.get("emb_sig"), ss.get(SELECTED)
    ss["emb_sig"] = sig
    if prev_sig not in (None, sig) or prev_sel is None or not 0 <= prev_sel < len(labels):
        wrong = np.flatnonzero(preds != labels) if same_classes else np.array([], int)
        ss[SELECTED] = int(wrong[0]) if len(wrong) else 0
    return int(ss[SELECTED])


def sample_caption(ds, n: int, preds: np.ndarray, labels: np.ndarray, same_classes: bool) -> str:
    """What the maps show: how many images, and how many the model gets right."""
    acc = float((preds == labels).mean()) if same_classes else None
    return (f"{n:,} images of {ds.source}" + (
        f"; the model classifies {acc:.1%} of them correctly" if acc is not None else
        "; the dataset's classes are not the model's, so errors are not marked")
        + ". Click a point (or pick one below) to see its image; the ring marks it on both maps.")


def space_name(space: str, short: bool = False) -> str:
    if space == embed.PIXELS:
        return "pixel space" if short else "raw pixels"
    return f"`{space}` feature space" if short else f"layer `{space}`"


def show_quality(fs, space: str, proj, qual) -> None:
    """The size of the feature space, the time taken, and how faithful the 2-D map is."""
    red = fs.reductions.get(space)
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


def show_selected(info, ds, ds_name: str, idx: np.ndarray, labels: np.ndarray, fs,
                  selected: int, same_classes: bool) -> None:
    """The selected image, the model's top 3 for it and its Grad-CAM."""
    i = int(idx[selected])
    raw = ds.images[i]
    left, mid, right = st.columns([2, 3, 2])
    with left:
        st.image(render.upscale(raw, 224), width=224,
                 caption=f"#{i}: true class {ds.class_names[labels[selected]]}")
    with mid:
        st.plotly_chart(figures.topk_figure(fs.probs[selected], info.class_names, 3,
                                            int(labels[selected]) if same_classes else None,
                                            "Prediction"), width="stretch")
    with right:
        try:
            heat = cache.gradcam(info.key, info, ds_name, i)
            cam = render.overlay(embed.model_images(info, raw[None])[0], heat, 0.5)
            st.image(render.upscale(cam, 224), width=224,
                     caption="Grad-CAM: where the evidence for the predicted class lies")
            widgets.downloads(f"gradcam_{ds_name}_{i}", cam, heat, key="emb_cam")
        except ImportError:
            st.info("Grad-CAM will appear here once the explanation package is installed.")
        except jobs.Cancelled:
            st.info(jobs.CANCELLED_NOTICE, icon=":material/block:")
        except ValueError as exc:
            st.warning(f"No Grad-CAM for this model: {exc}")


def show_neighbours(ds, idx: np.ndarray, labels: np.ndarray, fs, spaces: list[str],
                    selected: int, k: int) -> None:
    """The selected image's ``k`` nearest neighbours in each feature space."""
    for space in spaces:
        nb, dist = embed.nearest_neighbours(fs.values[space], selected, k)
        agree = int((labels[nb] == labels[selected]).sum())
        st.markdown(f"**{k} nearest neighbours in {space_name(space, True)}**: {agree} of {k} "
                    "share its class")
        st.image([render.upscale(ds.images[int(idx[j])], 84) for j in nb], width=84,
                 caption=[f"{ds.class_names[labels[j]]} ({d:.2g})" for j, d in zip(nb, dist)])


def downloads(info, ds, ds_name: str, idx: np.ndarray, labels: np.ndarray, fs, results: dict,
              layer: str, method: str) -> None:
    """The embedding as CSV (every image, its classes and coordinates) and as .npy."""
    coords = {"": results[layer][0].coords}
    if embed.PIXELS in results and layer != embed.PIXELS:
        coords["pixels_"] = results[embed.PIXELS][0].coords

    def csv() -> bytes:  # made when the button is pressed, not on every rerun
        return embed.csv_bytes(embed.embedding_frame(idx.tolist(), labels, ds.class_names,
                                                     fs.probs, info.class_names, coords))

    name = f"embedding_{method}_{layer}_{ds_name}_{len(idx)}"
    d1, d2 = st.columns(2)
    d1.download_button("Download the embedding (CSV)", csv, f"{name}.csv",
                       "text/csv", key="emb_csv", icon=":material/download:")
    d2.download_button("Download the coordinates (.npy)", lambda: render.npy_bytes(coords[""]),
                       f"{name}.npy", "application/octet-stream", key="emb_npy",
                       icon=":material/download:")


def default_sample(info) -> int:
    """The sample the page starts with: 2,000 images on a 28x28 model, the minimum (300) on a
    bigger one (each image is a forward pass of a 224x224 network: 2,000 would take five minutes
    of both cores and 3 GB of features on VGG16)."""
    return embed.DEFAULT_SAMPLE if info.input_shape[:2] == (28, 28) else embed.MIN_SAMPLE


def link_fields(info, layers: list[str], default_layer: str, datasets: list[str],
                default_ds: str) -> list:
    """The page's settings as link fields."""
    from ui import links

    return [links.choice_field("dataset", "emb_dataset", default_ds, datasets),
            links.int_field("n", "emb_n", default_sample(info), embed.MIN_SAMPLE,
                            embed.MAX_SAMPLE),
            links.choice_field("layer", f"emb_layer_{info.key}", default_layer, layers),
            links.choice_field("method", "emb_method", "tsne", list(embed.METHODS)),
            links.int_field("perplexity", "emb_perplexity", 30, 5, 100),
            links.int_field("iterations", "emb_iters", 500, 100, 1500),
            links.int_field("every", "emb_every", 20, 5, 100),
            links.int_field("neighbours", "emb_nn", 15, 2, 100),
            links.float_field("min_dist", "emb_md", 0.1, 0.0, 1.0),
            links.int_field("seed", "emb_seed", 0, 0, 10_000),
            links.flag_field("pixels", "emb_compare", True),
            links.int_field("k", "emb_k", 10, 3, 30),
            links.flag_field("animation", "emb_anim_on", False)]
