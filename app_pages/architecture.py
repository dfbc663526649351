"""Architecture: the model graph and a layer table."""

import pandas as pd
import streamlit as st

from ui import state, widgets
from vizcore import features

st.title("Architecture")
widgets.note(
    "Each box is a layer; the arrow shows where its output goes, and the shape is what it "
    "outputs for one image (height x width x channels for convolutions, units for dense layers). "
    "Parameters are the numbers learned in training: most sit in the dense layers, most "
    "computation in the convolutions. The graph shows structure, not what the layers learned.")

info = state.current_model()


@st.cache_data(show_spinner=False, max_entries=16)
def _table(key: str, _model) -> list[dict]:
    return features.layer_table(_model)


@st.cache_data(show_spinner=False, max_entries=16)
def _dot(key: str, _model, rankdir: str) -> str:
    return features.graph_dot(_model, rankdir)


rows = _table(info.key, info.model)
total = sum(r["parameters"] for r in rows)
trainable = sum(r["parameters"] for r in rows if r["trainable"])
c1, c2, c3 = st.columns(3)
c1.metric("Layers", len(rows))
c2.metric("Parameters", f"{total:,}")
c3.metric("Conv layers", len(info.conv_layers()))

left, right = st.columns([2, 3])
with left:
    st.subheader("Graph")
    direction = st.radio("Direction", ["top to bottom", "left to right"], horizontal=True,
                         key="arch_dir")
    st.graphviz_chart(_dot(info.key, info.model, "TB" if direction == "top to bottom" else "LR"),
                      width="content")
    if len(rows) > features.GRAPH_MAX_LAYERS:
        st.caption(f"The graph shows the first {features.GRAPH_MAX_LAYERS} of {len(rows)} layers; "
                   "the table lists them all.")
with right:
    st.subheader("Layers")
    df = pd.DataFrame([{k: v for k, v in r.items() if k != "inbound"} for r in rows])
    df["share of parameters"] = df["parameters"] / max(total, 1)
    kinds = st.multiselect("Show layer types", sorted(df["type"].unique()), key="arch_types",
                           placeholder="all types")
    if kinds:
        df = df[df["type"].isin(kinds)]
    st.dataframe(df, hide_index=True, width="stretch", height=min(38 * len(df) + 40,
                                                                             700),
                 column_config={"share of parameters": st.column_config.ProgressColumn(
                     format="percent", min_value=0, max_value=1)})
    st.download_button("Download the layer table (CSV)", df.to_csv(index=False),
                       f"{info.model.name}_layers.csv", "text/csv", key="arch_csv")
    st.caption(f"Trainable parameters: {trainable:,} of {total:,}.")
