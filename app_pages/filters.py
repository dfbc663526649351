"""Filters and feature maps: first-layer kernels, conv feature maps, dense activations."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui import state, widgets
from vizcore import features, render

st.title("Filters and feature maps")
widgets.note(
    "A filter is a small pattern of weights the first layer slides over the image; mid-grey is 0, "
    "bright is positive, dark is negative. A feature map shows where in this image a filter "
    "responds (bright = strong). Deeper maps are coarser and respond to larger, more abstract "
    "patterns; a map being bright does not by itself mean it matters for the decision.")

info = state.current_model()
inp = state.current_input(info)


@st.cache_data(show_spinner=False, max_entries=16)
def _kernels(key: str, _model):
    name, k = features.first_conv_kernels(_model)
    return name, features.kernel_tiles(k)


@st.cache_data(show_spinner="Computing feature maps...", max_entries=64)
def _maps(key: str, _model, layer: str, x: np.ndarray, sort: str) -> features.FeatureMaps:
    return features.feature_maps(_model, layer, x, sort=sort)


@st.cache_data(show_spinner=False, max_entries=64)
def _dense(key: str, _model, layer: str, x: np.ndarray) -> np.ndarray:
    return features.dense_activations(_model, layer, x)


# ------------------------------------------------------------------------ first-layer filters
st.header("First-layer filters")
name, tiles = _kernels(info.key, info.model)
st.caption(f"{len(tiles)} kernels of layer `{name}`, each {tiles.shape[1]}x{tiles.shape[2]}"
           + (" (RGB)" if tiles.ndim == 4 else " (mean over input channels)"))
kgrid = render.grid(tiles, cols=min(16, len(tiles)), normalize_each=False)
st.image(render.upscale(kgrid, 480), width=min(720, 40 * min(16, len(tiles)) + 40))
widgets.downloads(f"{info.model.name}_{name}_kernels", kgrid, tiles, key="kernels")

# ------------------------------------------------------------------------ feature maps
st.header("Feature maps for the current input")
conv = info.layers_of(("Conv2D", "MaxPooling2D", "AveragePooling2D", "Activation",
                       "BatchNormalization", "DepthwiseConv2D", "SeparableConv2D"))
c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
layer = c1.selectbox("Layer", conv, index=0, key="fm_layer")
sort = c2.radio("Order", ["index", "mean", "max"], horizontal=True, key="fm_sort",
                format_func={"index": "channel", "mean": "mean activation",
                             "max": "peak"}.get)
fm = _maps(info.key, info.model, layer, inp.x, sort)
n_channels = len(fm.maps)
limit = c3.slider("Maps shown", 1, n_channels, min(64, n_channels), key=f"fm_limit_{layer}")
cmap = c4.selectbox("Colours", ["viridis", "gray", "magma", "coolwarm"], key="fm_cmap")
order = fm.order[:limit]
dead = int((fm.maps.reshape(n_channels, -1).max(axis=1) <= 0).sum())
st.caption(f"`{layer}`: {n_channels} maps of {fm.maps.shape[1]}x{fm.maps.shape[2]}; "
           f"{dead} are all zero for this image (silent filters). Each tile is scaled on its own.")
left, right = st.columns([3, 2])
with left:
    cols = int(np.ceil(np.sqrt(limit)))
    fgrid = render.grid(fm.maps[order], cols=cols, cmap=None if cmap == "gray" else cmap)
    st.image(render.upscale(fgrid, 560), width="stretch")
    widgets.downloads(f"{info.model.name}_{layer}_maps", fgrid, fm.maps, key="maps")
with right:
    ch = st.selectbox("Look at one map", [int(i) for i in order], key=f"fm_one_{layer}",
                      format_func=lambda i: f"channel {i} (mean {fm.means[i]:.3g})")
    st.plotly_chart(widgets.heatmap_figure(fm.maps[ch], f"{layer}, channel {ch}",
                                           colorscale="Viridis"),
                    width="stretch")
    st.image(render.overlay(inp.raw, render.normalize(fm.maps[ch]), 0.5, "viridis"),
             caption="The same map laid over the input", width=260)

# ------------------------------------------------------------------------ dense activations
st.header("Dense-layer activations")
dense = info.dense_layers()
if not dense:
    st.info("This model has no dense layers.")
else:
    d_layer = st.selectbox("Dense layer", dense, index=0, key="dense_layer")
    act = _dense(info.key, info.model, d_layer, inp.x)
    names = info.class_names if len(act) == info.num_classes else None
    fig = go.Figure(go.Bar(x=np.arange(len(act)), y=act, marker_color="#1f77b4",
                           customdata=names, hovertemplate=(
                               "unit %{x}: %{y:.3g}" + (" (%{customdata})" if names else "")
                               + "<extra></extra>")))
    fig.update_layout(xaxis_title="unit", yaxis_title="activation", height=300,
                      margin=dict(l=10, r=10, t=10, b=40))
    st.plotly_chart(fig, width="stretch")
    st.caption(f"{int((act > 0).sum())} of {len(act)} units are active (> 0) for this image. "
               "The output layer's activations are class probabilities.")
