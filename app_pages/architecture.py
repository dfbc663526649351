"""Architecture: the model graph and a layer table."""

import streamlit as st

from ui import cache, links, state, widgets
from ui import network_view as view
from vizcore import features

st.title("Architecture")
widgets.note(
    "Each box is a layer; the arrow shows where its output goes, and the shape is what it "
    "outputs for one image (height x width x channels for convolutions, units for dense layers). "
    "Parameters are the numbers learned in training: most sit in the dense layers, most "
    "computation in the convolutions. The graph shows structure, not what the layers learned.")

info = state.current_model()
fields = [links.choice_field("direction", "arch_dir", "top to bottom",
                             ["top to bottom", "left to right"])]
links.restore(fields)
state.sync_link(fields)
rows = cache.layer_table(info.key, info.model)
df, total, trainable = view.layer_frame(rows)
c1, c2, c3 = st.columns(3)
c1.metric("Layers", len(rows))
c2.metric("Parameters", f"{total:,}")
c3.metric("Conv layers", len(info.conv_layers()))

left, right = st.columns([2, 3])
with left:
    st.subheader("Graph")
    direction = st.radio("Direction", ["top to bottom", "left to right"], horizontal=True,
                         key="arch_dir")
    rankdir = "TB" if direction == "top to bottom" else "LR"
    st.graphviz_chart(cache.graph_dot(info.key, info.model, rankdir), width="content")
    if len(rows) > features.GRAPH_MAX_LAYERS:
        st.caption(f"The graph shows the first {features.GRAPH_MAX_LAYERS} of {len(rows)} layers; "
                   "the table lists them all.")
with right:
    st.subheader("Layers")
    kinds = st.multiselect("Show layer types", sorted(df["type"].unique()), key="arch_types",
                           placeholder="all types")
    if kinds:
        df = df[df["type"].isin(kinds)]
    st.dataframe(df, hide_index=True, width="stretch", height=min(38 * len(df) + 40, 700),
                 column_config={"share of parameters": st.column_config.ProgressColumn(
                     format="percent", min_value=0, max_value=1)})
    st.download_button("Download the layer table (CSV)", df.to_csv(index=False),
                       f"{info.model.name}_layers.csv", "text/csv", key="arch_csv")
    st.caption(f"Trainable parameters: {trainable:,} of {total:,}.")
