"""Drawing an input by hand (28x28 grayscale models)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from ui import state
from vizcore import data


def draw_input() -> None:
    """A black canvas with a white brush; 'Use drawing' makes it the current input."""
    try:
        from streamlit_drawable_canvas import st_canvas
    except ImportError:  # pragma: no cover - the package is in requirements.txt
        st.error("The drawing canvas needs streamlit-drawable-canvas (see requirements.txt).")
        return
    st.caption("Draw a bright shape on black, like the training images (a shoe, a shirt, a "
               "digit). It is centred and shrunk to 28x28 like the dataset.")
    c1, c2 = st.columns([2, 1])
    width = c2.slider("Brush width", 6, 40, 18, key="canvas_brush")
    with c1:
        result = st_canvas(fill_color="rgba(255,255,255,1)", stroke_width=width,
                           stroke_color="#FFFFFF", background_color="#000000", height=280,
                           width=280, drawing_mode="freedraw", key="draw_canvas",
                           return_image_data=True)
    if c2.button("Use drawing", key="canvas_use", type="primary"):
        rgba = None if result is None else result.image_data
        if rgba is None or np.asarray(rgba)[..., :3].max() == 0:
            c2.warning("The canvas is empty: draw something first.")
        else:
            img = data.canvas_to_image(np.asarray(rgba))
            state.set_input({"kind": "image", "image": img, "title": "your drawing",
                             "invert": False})
            st.rerun()
