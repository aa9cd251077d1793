"""SlimLab's entry point: the frame every page is drawn in, once — page config, navigation, the sidebar's model
picker and teacher mode — then the page chosen. Pages read the model and the teacher flag with state.current()."""
import streamlit as st

from slimcore import jobs
from slimui import lessons, projector, state, urlstate, warmup
from slimui import text as text_ui

# file, title, icon. The title is the URL path too: /Pruning, /Trade-offs... as Streamlit derived them from the file
# names before the app had a navigation of its own, so old links still open the same page. Home is at /.
PAGES = [("views/0_Home.py", "Home", "🔬"), ("views/1_Pruning.py", "Pruning", "✂️"),
         ("views/2_Quantization.py", "Quantization", "🎚️"), ("views/3_Distillation.py", "Distillation", "🧪"),
         ("views/4_Trade-offs.py", "Trade-offs", "⚖️"), ("views/5_Sensitivity.py", "Sensitivity", "🎯"),
         ("views/6_Lessons.py", "Lessons", "🎓")]

page = st.navigation([st.Page(path, title=title, icon=icon, url_path=title, default=title == "Home")
                      for path, title, icon in PAGES])
st.set_page_config(page_title="SlimLab" if page.title == "Home" else f"SlimLab · {page.title}", page_icon=page.icon,
                   layout="wide",   # a projector link opens with the sidebar folded: the lab gets the whole screen
                   initial_sidebar_state="collapsed" if st.query_params.get("projector") == "1" else "auto")
warmup.start()   # once per server: the default views of every sample, in the background
lessons.enter()   # a link to a lesson step: its model and settings, not the ones this session holds
s = state.sidebar()
urlstate.rename_old_keys(text_ui.is_text(s))   # links made before one key per setting
urlstate.teacher_toggle()
urlstate.projector_toggle()
projector.style()
with st.sidebar:
    warmup.note()
try:
    with jobs.GATE.shared():   # the background worker waits for page runs, and torch.fx traces never overlap one
        page.run()
finally:
    jobs.release_memory()   # what the run built and dropped goes back to the system
