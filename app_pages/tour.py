"""Tour: one path through the app for a class, step by step (a lesson preset picks the steps)."""

import streamlit as st

from ui import links, state, widgets
from ui import tour as steps_view
from vizcore import lessons

st.title("Guided tour")
widgets.note(
    "A path through what a CNN has learned, in the order of the course: each step shows a live "
    "figure for the current image, asks a question, and links to the full page. The figures "
    "are evidence about this model on this image, not general truths about CNNs.")

available = lessons.available()
if not available:
    st.error("No lesson file found in assets/lessons/. Fix: restore the shipped lessons.")
    st.stop()
current = st.session_state.get(links.LESSON_KEY)
if current not in available:
    current = next(iter(available))
    st.session_state[links.LESSON_KEY] = current
st.session_state["tour_lesson"] = current


def _switch_lesson() -> None:
    links.apply_lesson(lessons.load(st.session_state["tour_lesson"]), list(state.model_options()),
                       state.set_model, state.link_image)
    st.session_state["tour_step"] = 1


pick = st.selectbox("Lesson", list(available), key="tour_lesson", on_change=_switch_lesson,
                    format_func=lambda n: lessons.load(n).title)
try:
    lesson = lessons.load(pick)
except lessons.LessonError as exc:
    st.error(f"This lesson file cannot be used: {exc}. Fix the file in assets/lessons/.")
    st.stop()
if lesson.summary:
    st.caption(lesson.summary)

n = len(lesson.steps)
fields = [links.int_field("step", "tour_step", 1, 1, n)]
links.restore(fields)
st.session_state.setdefault("tour_step", 1)


def _move(delta: int) -> None:
    st.session_state["tour_step"] = min(n, max(1, st.session_state["tour_step"] + delta))


nav = st.columns([1, 4, 1])
nav[0].button("Previous", icon=":material/arrow_back:", on_click=_move, args=(-1,),
              disabled=st.session_state["tour_step"] <= 1, key="tour_prev", width="stretch")
nav[1].select_slider("Step", options=list(range(1, n + 1)), key="tour_step",
                     format_func=lambda i: f"{i}. {lessons.STEPS[lesson.steps[i - 1]]}",
                     label_visibility="collapsed")
nav[2].button("Next", icon=":material/arrow_forward:", on_click=_move, args=(1,),
              disabled=st.session_state["tour_step"] >= n, key="tour_next", width="stretch")
i = int(st.session_state["tour_step"])
step = lesson.steps[i - 1]
words = steps_view.WORDS[step]
state.sync_link(fields)

info = state.current_model()
inp = state.current_input(info)
st.header(f"Step {i} of {n}: {lessons.STEPS[step]}")
st.markdown(lesson.words(step, "intro", words.intro))
params = steps_view.show(step, info, inp, lesson)
st.info(lesson.words(step, "question", words.question), icon=":material/help:")
with st.expander("Reveal", icon=":material/visibility:"):
    st.markdown(lesson.words(step, "answer", words.answer))
common, _ = state.common_link()
st.page_link(f"app_pages/{steps_view.PAGES[step]}.py", label="Open the full page at this view",
             icon=":material/open_in_new:", query_params={**common, **params})
