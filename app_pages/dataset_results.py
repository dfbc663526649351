"""Dataset results: a batch job's output over a whole dataset (method ranking, sorted images,
the embedding of every image, each image's maps), or a small job run from the page."""

import streamlit as st

from ui import dataset_results as dr
from ui import links, state, widgets
from ui.dataset_figures import COLOURS, SORTS

st.title("Dataset results")
widgets.note(
    "One map explains one prediction; here every image of a dataset was explained, scored and "
    "placed on a map, so you can ask which method's maps the model really follows, which images "
    "it gets right for the wrong reason, and where they sit among the others. The numbers rank "
    "the methods on this data and this model only: they say nothing about other models, and a "
    "faithful map can still point at the wrong reason.")

ss = st.session_state
fields = dr.link_fields()
links.restore(fields)  # a link's folder and view, before the widgets are drawn
found = dr.found_folders()
dr.prepare_folder_widgets(found)

# ------------------------------------------------------------------------ which results
c1, c2 = st.columns([3, 2])
c1.text_input("Output folder of a batch job (on this server)", key=dr.DIR,
              placeholder="/path/to/out", help="The --out folder of `python -m vizcore batch "
              "explain|score|embed`: it holds explain/, score/ and embed/ sub-folders.")
c2.selectbox("... or one found on this server", list(found), format_func=found.get,
             key=dr.PICK, on_change=dr.pick_folder,
             placeholder="Newest first" if found else "None yet: run a small job below",
             disabled=not found)
with st.expander("Run a small job here (no cluster needed)", icon=":material/play_circle:",
                 expanded=not ss.get(dr.DIR) or dr.RUN in ss):
    dr.job_form(state.current_model())
dr.run_requested()

view = dr.open_view(ss.get(dr.DIR, ""))
if view is None:
    state.sync_link(fields)
    st.stop()
dr.overview(view)

# ------------------------------------------------------------------------ the ranking
st.header("Which method's maps does the model follow?")
dr.show_ranking(view)

# ------------------------------------------------------------------------ sorted images
st.header("Images, sorted")
if view.methods and ss.get(dr.METHOD) not in view.methods:
    ss[dr.METHOD] = view.methods[0]
s1, s2 = st.columns(2)
how = s1.selectbox("Sort by", list(SORTS), format_func=SORTS.get, key=dr.SORT)
method = s2.selectbox("Method (for faithfulness, colours and the wrong reason)", view.methods,
                      format_func=dr.method_name, key=dr.METHOD) if view.methods else None
st.caption({
    "faithfulness": "Insertion minus deletion AUC of the method's map: the lowest first, the "
                    "images where the map least predicts what the model does.",
    "confidence": "The model's probability for its predicted class, lowest first: the images "
                  "it hesitates on.",
    "wrong": "Wrong predictions the model was surest of: often a label error, or a class "
             "the model confuses.",
    "disagreement": "1 minus the mean rank correlation between the methods' maps: high when "
                    "the methods point at different pixels, so at least one of them misleads.",
    "wrong_reason": "Correct predictions whose map puts more than half its mass on the "
                    "black background: the model may use something other than the object.",
}[how])
dr.show_sorted(view, how, method)

# ------------------------------------------------------------------------ the embedding
st.header("The whole set, mapped")
if view.res.points is None:
    st.info("No embed job in this folder: run `python -m vizcore batch embed ... --out "
            "<this folder>` to map every image.")
else:
    projections = [p for p in dr.PROJECTIONS if f"{p}_x" in view.res.points]
    if ss.get(dr.PROJ) not in projections:
        ss[dr.PROJ] = projections[0]
    e1, e2 = st.columns(2)
    proj = e1.radio("Map", projections, format_func=dr.PROJECTIONS.get, key=dr.PROJ,
                    horizontal=True)
    colours = [c for c in COLOURS if (c != "correct" or view.same_classes)
               and (c != "faithfulness" or (view.scores is not None and method))]
    if ss.get(dr.COLOUR) not in colours:
        ss[dr.COLOUR] = colours[0]
    colour = e2.radio("Colour", colours, format_func=COLOURS.get, key=dr.COLOUR, horizontal=True)
    dr.show_embedding(view, proj, colour, method)

# ------------------------------------------------------------------------ one image
st.header("The selected image")
top = view.max_position
if not 0 <= ss.get(dr.POS, 0) <= top:
    ss[dr.POS] = 0
st.columns([1, 2])[0].number_input("Image position (or click a dot, or Inspect an image)", 0,
                                   top, key=dr.POS)
dr.show_selected(view, int(ss[dr.POS]))
state.sync_link(fields)
