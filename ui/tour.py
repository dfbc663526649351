"""The guided tour's steps: for each, two or three sentences, the live figure for the current
image, a question for the students, the answer behind a reveal, and a link that opens the full
page at that view. The order and the words can be changed by a lesson (:mod:`vizcore.lessons`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from ui import cache, figures, jobs
from ui import network_view as net
from vizcore.explain import REGISTRY


@dataclass(frozen=True)
class Words:
    intro: str
    question: str
    answer: str


#: Each step's default words (a lesson may replace any of them).
WORDS = {
    "model": Words(
        "A convolutional network is a stack of layers. Convolutions look at small windows of "
        "the image and keep its layout; pooling halves the resolution; the dense layers at the "
        "end turn what was found into one score per class.",
        "Where are most of the parameters: in the convolutions or in the dense layers? Why?",
        "In the first dense layer: it connects every value of the last feature maps to every "
        "unit. A convolution shares one small kernel across all positions, so it needs few "
        "weights however big the image is."),
    "filters": Words(
        "The first layer's filters are small kernels slid over the image. Each one answers "
        "'is my pattern here?' at every position. Grey is 0; light and dark are the weights.",
        "What kinds of patterns do these first filters look for?",
        "Mostly edges and gradients at various orientations, and blobs of light or dark: the "
        "same first features found in most trained CNNs and in the visual cortex."),
    "feature_maps": Words(
        "Running the image through one filter gives a feature map: bright where the pattern "
        "is found. Deeper layers combine maps into more specific, coarser ones.",
        "Compare two maps: which part of the image does each respond to?",
        "Some maps light up on outlines at one orientation, others on large uniform regions or "
        "textures. Black maps are filters this image does not excite at all."),
    "unit": Words(
        "Activation maximization starts from noise and changes the input, step by step, to "
        "make one unit fire as much as possible: a picture of what that unit responds to.",
        "Watch the animation: does the final picture look like a piece of clothing?",
        "Rarely: it shows a pattern the unit likes (repeated stripes, edges, a texture), "
        "shaped by the regularisers. It is evidence about the unit, not a photograph."),
    "patches": Words(
        "The same unit, seen through real data: the dataset images that excite it most, with "
        "the part of the image the unit can see (its receptive field) boxed.",
        "Do the patches share something? Does it match the synthetic picture?",
        "Usually the patches share a local pattern (a collar, a sole, a strap edge). When they "
        "agree with the synthetic image you can name the unit; when not, be careful."),
    "occlusion": Words(
        "Hide part of the image and watch the prediction. If the probability of the class "
        "drops, the model was using that region. Here the centre is covered with grey.",
        "Which part of the image would you cover to change the answer most?",
        "The region with the most class-specific shape. Try it on the Occlusion page: draw "
        "your own mask. A grey patch is itself an unusual input, so small changes mean little."),
    "attribution": Words(
        "Attribution maps colour the pixels that most influenced the score. Saliency is the "
        "raw gradient (noisy); SmoothGrad averages it over noisy copies; Grad-CAM weighs the "
        "last conv layer's maps by their gradient (coarse but class-specific).",
        "Where do you think the network looks to decide? Do the three maps agree?",
        "They agree on the object but not on the details: gradients mark edges and single "
        "pixels, Grad-CAM marks regions. The sanity check asks if each map depends on the "
        "learned weights at all: a map that survives randomising the weights shows the image, "
        "not the model."),
    "faithfulness": Words(
        "A faithful map ranks pixels by how much the model needs them. Deletion removes the "
        "top-ranked pixels first: the probability should fall fast (low area). Insertion adds "
        "them to a blurred image: it should rise fast (high area).",
        "Which method is most faithful here? Is it the one whose map looks best?",
        "Not necessarily: the nicest-looking map is often not the most faithful. Scores also "
        "vary from image to image; the Explain page can score a whole sample."),
    "sanity": Words(
        "Adebayo et al. (2018) randomise the weights layer by layer, from the output down. A "
        "method that explains the model must change its map; one that does not is an edge "
        "detector.",
        "Which maps stay the same when the weights are random?",
        "Gradient-times-input style and guided methods often barely change: they mostly show "
        "the image. Grad-CAM and plain gradients fall apart, as they should."),
    "embedding": Words(
        "Each dot is one image, placed by t-SNE so that images with similar last-hidden-layer "
        "features are close. Colour is the true class; a cross is a wrong prediction.",
        "Which classes does the network keep apart, and which does it mix up?",
        "Trousers, bags and footwear form clean islands; shirts, T-shirts, pullovers and coats "
        "overlap, and most crosses sit there. Distances between islands mean little in t-SNE."),
    "fooling": Words(
        "FGSM nudges every pixel by a tiny amount in the direction that hurts the current "
        "class most. The change is hard to see, but it can flip the prediction.",
        "Can you see the difference? Why would a network be so fragile?",
        "Barely: each pixel moves by a few grey levels, but all of them move together in the "
        "most harmful direction, and the effect adds up over hundreds of pixels."),
}

#: The page each step links to (its file under app_pages/).
PAGES = {"model": "architecture", "filters": "filters", "feature_maps": "filters",
         "unit": "unit_viz", "patches": "unit_viz", "occlusion": "occlusion",
         "attribution": "explain", "faithfulness": "explain", "sanity": "explain",
         "embedding": "embeddings", "fooling": "adversarial"}


def unit_choice(info, lesson) -> tuple[str, int]:
    """The conv unit the unit and patches steps show: the lesson's, else the last conv
    layer's first channel."""
    from vizcore import actmax

    convs = info.layers_of(actmax.CONV_KINDS)
    layer = lesson.unit_layer if lesson and lesson.unit_layer in convs else convs[-1]
    return layer, min(int(lesson.unit_index if lesson else 0),
                      actmax.n_units(info.model, layer) - 1)


def _maps_row(info, inp, methods: list[str]) -> dict:
    """The methods' maps side by side (shared with the Explain page's cache)."""
    out = {}
    for col, key in zip(st.columns(len(methods)), methods):
        with col:
            res = cache.explain(info.key, info, inp.x, key, None, None, ())
            st.markdown(f"**{REGISTRY[key].name}**")
            st.plotly_chart(figures.heatmap_figure(res.heatmap, inp.raw, zmin=0, zmax=1,
                                                   height=260), key=f"tour_map_{key}")
            out[key] = res
    return out


def show(step: str, info, inp, lesson) -> dict:
    """Draw ``step``'s live figure; returns the query parameters of its full-page link."""
    from vizcore import actmax

    methods = [m for m in (lesson.methods if lesson else ("saliency", "smoothgrad", "gradcam"))
               if REGISTRY[m].applies_to(info)[0]]
    if step == "model":
        df, total, _ = net.layer_frame(cache.layer_table(info.key, info.model))
        st.caption(f"{len(df)} layers, {total:,} parameters.")
        st.dataframe(df[[c for c in ("name", "type", "output shape", "parameters",
                                     "share of parameters") if c in df]], hide_index=True,
                     column_config={"share of parameters": st.column_config.ProgressColumn(
                         min_value=0.0, max_value=1.0, format="percent")})
        return {}
    if step == "filters":
        net.show_kernels(info)
        return {}
    if step == "feature_maps":
        layer = info.layers_of(actmax.CONV_KINDS)[0]
        fm = cache.feature_maps(info.key, info.model, layer, inp.x, "mean")
        order = fm.order[:16] if hasattr(fm, "order") else np.arange(min(16, len(fm.maps)))
        st.caption(f"The 16 strongest maps of `{layer}` for this image.")
        net.show_feature_grid(info, layer, fm.maps, order, "viridis")
        return {}
    if step in ("unit", "patches"):
        from ui import unit_viz

        layer, unit = unit_choice(info, lesson)
        if step == "unit":
            params = actmax.default_params(info)
            with jobs.cancellable("tour_unit"):
                res = cache.maximize(info, layer, unit, params,
                                     f"Optimising the input for `{layer}` unit {unit}...")
            unit_viz.show_result(info, layer, unit, res, params, f"`{layer}` unit {unit}")
        else:
            top, peaks, source = cache.unit_patches(info, layer, unit, 9)
            unit_viz.show_patches(info, layer, unit, 9, top, peaks, source, None,
                                  info.input_shape[0] > 64)
        return {"layer": layer, "unit": str(unit)}
    if step == "occlusion":
        from ui import occlusion_view as ov

        h, w = info.input_shape[:2]
        mask = np.zeros((h, w), bool)
        mask[ov.presets(h, w)["centre"]] = True
        cmp = cache.compare_occlusion(info.key, info, inp.x, mask, "gray", None, None)
        ov.show_comparison(info, inp.raw, inp.label, cmp, None, st.container())
        return {"cover": "centre"}
    if step in ("attribution", "faithfulness", "sanity"):
        from ui import explain_widgets as ew

        chosen = methods
        maps = _maps_row(info, inp, chosen)
        target = int(next(iter(maps.values())).target) if maps else 0
        if step == "faithfulness":
            curves = ew.faithfulness(info, inp.x, maps, 40, target)
            st.dataframe(ew.faithfulness_table(curves), hide_index=True)
        else:
            st.markdown("**The sanity check**: randomise the weights from the top layer down "
                        "and see whether each map changes (it should).")
            sanity = jobs.gated_result("Run the sanity check", f"tour_sanity_{step}",
                                       (info.key, inp.digest, tuple(maps)),
                                       lambda: ew.randomisation(info, inp.x, list(maps), target,
                                                                {}),
                                       type="primary", auto=step == "sanity")
            if sanity is not None:
                ew.show_randomisation(sanity)
        from ui import links, state

        probs, _ = state.predict(info, inp)
        params = {"methods": ",".join(chosen)}
        ew.report_button(st.empty(), info, inp, probs, target, maps, {}, None,
                         links.address_of("explain", {**state.common_link()[0], **params}),
                         key=f"tour_report_{step}")
        return params
    if step == "embedding":
        from ui import embeddings as efigs
        from vizcore import embed

        layer = embed.penultimate_layer(info.model)
        ds_name = "fashion_mnist"
        ds = cache.load_dataset(ds_name)
        idx, fs = cache.features(info.key, info, ds_name, embed.DEFAULT_SAMPLE, 0, layer)
        from vizcore.warm import embedding_params

        params = embedding_params("tsne")  # the Embeddings page's defaults
        proj, _ = cache.projection(info.key, ds_name, len(idx), 0, layer, "tsne",
                                   tuple(sorted(params.items())), 10, fs.values[layer],
                                   ds.labels[idx])
        st.plotly_chart(efigs.scatter_figure(proj.coords, ds.labels[idx], ds.class_names,
                                             fs.predictions, fs.confidence, info.class_names,
                                             idx, None, True, height=460), key="tour_emb")
        return {}
    if step == "fooling":
        from ui import occlusion_view as ov

        res = cache.attack(info.key, info, inp.x, "fgsm", 8.0, None, 1, 0.0)
        ov.show_attack(info, inp, res, None, "tour_fgsm")
        return {}
    raise KeyError(step)
