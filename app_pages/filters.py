"""Filters and feature maps: first-layer kernels, conv feature maps, dense activations."""

import streamlit as st

from ui import cache, figures, links, state, widgets
from ui import network_view as view

st.title("Filters and feature maps")
widgets.note(
    "A filter is a small pattern of weights the first layer slides over the image; mid-grey is 0, "
    "bright is positive, dark is negative. A feature map shows where in this image a filter "
    "responds (bright = strong). Deeper maps are coarser and respond to larger, more abstract "
    "patterns; a map being bright does not by itself mean it matters for the decision.")

info = state.current_model()
inp = state.current_input(info)

# ------------------------------------------------------------------------ first-layer filters
st.header("First-layer filters")
view.show_kernels(info)

# ------------------------------------------------------------------------ feature maps
st.header("Feature maps for the current input")
conv = info.layers_of(("Conv2D", "MaxPooling2D", "AveragePooling2D", "Activation",
                       "BatchNormalization", "DepthwiseConv2D", "SeparableConv2D"))
c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
fields = [links.choice_field("layer", "fm_layer", conv[0] if conv else None, conv),
          links.choice_field("order", "fm_sort", "index", ["index", "mean", "max"]),
          links.choice_field("colours", "fm_cmap", "viridis",
                             ["viridis", "gray", "magma", "coolwarm"])]
links.restore(fields)
layer = c1.selectbox("Layer", conv, index=0, key="fm_layer")
sort = c2.radio("Order", ["index", "mean", "max"], horizontal=True, key="fm_sort",
                format_func={"index": "channel", "mean": "mean activation",
                             "max": "peak"}.get)
fm = cache.feature_maps(info.key, info.model, layer, inp.x, sort)
n_channels = len(fm.maps)
limit = c3.slider("Maps shown", 1, n_channels, min(64, n_channels), key=f"fm_limit_{layer}")
cmap = c4.selectbox("Colours", ["viridis", "gray", "magma", "coolwarm"], key="fm_cmap")
state.sync_link(fields)
order = fm.order[:limit]
st.caption(f"`{layer}`: {n_channels} maps of {fm.maps.shape[1]}x{fm.maps.shape[2]}; "
           f"{view.silent_maps(fm.maps)} are all zero for this image (silent filters). Each tile "
           "is scaled on its own.")
left, right = st.columns([3, 2])
with left:
    view.show_feature_grid(info, layer, fm.maps, order, cmap)
with right:
    ch = st.selectbox("Look at one map", [int(i) for i in order], key=f"fm_one_{layer}",
                      format_func=lambda i: f"channel {i} (mean {fm.means[i]:.3g})")
    st.plotly_chart(figures.heatmap_figure(fm.maps[ch], title=f"{layer}, channel {ch}",
                                           colorscale="Viridis"), width="stretch")
    st.image(view.map_overlay(inp.raw, fm.maps[ch]), caption="The same map laid over the input",
             width=260)

# ------------------------------------------------------------------------ dense activations
st.header("Dense-layer activations")
dense = info.dense_layers()
if not dense:
    st.info("This model has no dense layers.")
else:
    d_layer = st.selectbox("Dense layer", dense, index=0, key="dense_layer")
    act = cache.dense_activations(info.key, info.model, d_layer, inp.x)
    names = info.class_names if len(act) == info.num_classes else None
    st.plotly_chart(figures.activations_figure(act, names), width="stretch")
    st.caption(f"{view.active_units(act)} of {len(act)} units are active (> 0) for this image. "
               "The output layer's activations are class probabilities.")
