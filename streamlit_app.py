"""vizcore: see inside a CNN. Entry point: ``streamlit run streamlit_app.py``."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import streamlit as st  # noqa: E402

from ui import runtime  # noqa: E402

runtime.configure()  # no Keras clean-up and no full GC after every run (see ui/runtime.py)

st.set_page_config(page_title="vizcore: see inside a CNN", page_icon=":material/visibility:",
                   layout="wide")

PAGES = {
    "Start": [st.Page("app_pages/tour.py", title="Tour", icon=":material/school:"),
              st.Page("app_pages/home.py", title="Home: model, input, prediction",
                      icon=":material/home:", default=True)],
    "Inside the network": [
        st.Page("app_pages/architecture.py", title="Architecture", icon=":material/account_tree:"),
        st.Page("app_pages/filters.py", title="Filters and feature maps",
                icon=":material/grid_on:"),
        st.Page("app_pages/unit_viz.py", title="What a unit wants to see",
                icon=":material/auto_awesome:"),
        st.Page("app_pages/embeddings.py", title="Embeddings (t-SNE, UMAP, PCA)",
                icon=":material/scatter_plot:"),
    ],
    "Why this prediction?": [
        st.Page("app_pages/explain.py", title="Explain a prediction", icon=":material/insights:"),
        st.Page("app_pages/occlusion.py", title="Occlusion", icon=":material/select:"),
        st.Page("app_pages/adversarial.py", title="Fooling the model", icon=":material/warning:"),
    ],
    "Learning": [
        st.Page("app_pages/training_lab.py", title="Training lab",
                icon=":material/model_training:"),
    ],
    "Whole datasets": [
        st.Page("app_pages/dataset_results.py", title="Dataset results",
                icon=":material/dataset:"),
    ],
}
nav = st.navigation(PAGES)  # before the heavy imports, so the sidebar shows these pages at once

from ui import links, state  # noqa: E402  (imports TensorFlow)

st.sidebar.title("vizcore")
# a link's model, image and hidden controls, before the sidebar shows them (see ui/links.py)
links.restore_common(list(state.model_options()), state.set_model, state.link_image)
info = state.current_model() if links.hidden("sidebar") else state.model_picker()
state.input_sidebar(info)
nav.run()
