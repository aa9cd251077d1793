"""Lessons: every guided lesson (lessons/*.yaml), each a link to its first step; and how to write one."""
import streamlit as st

from slimui import lessons
from slimui.safe import code, md, prose

st.title("Lessons")
st.caption("Short guided tours of the labs. Each step opens a lab at a setting, asks you to **predict** a figure, "
           "then reveals what the lab measured and why. A lesson is a link: share a step's address and it opens "
           "the same view. Lessons are YAML files, so a teacher can write a new one without Python.")
found, problems = lessons.lessons()
for problem in problems:
    st.warning(f"A lesson file could not be read: {md(problem)}")
if not found:
    st.info("No lessons here yet: put lesson files (YAML) in the lessons/ folder.")
for lesson in found.values():
    with st.container(border=True, key=f"lesson_card_{lesson.id}"):
        left, right = st.columns([4, 1])
        left.markdown(f"**{md(lesson.title)}** · {len(lesson.steps)} steps · model {code(lesson.model)}")
        left.markdown(prose(lesson.summary))
        page, query = lessons.link(lesson, 0)
        right.page_link(page, label="Start ▶", query_params=query)
        left.caption(" → ".join(f"{i + 1}. {md(step.title)} ({step.lab})" for i, step in enumerate(lesson.steps)))

with st.expander("Write a lesson", expanded=False):
    st.markdown((lessons.FOLDER / "README.md").read_text(encoding="utf-8"))
