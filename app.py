"""SlimLab: the entry point. It lists the pages in pages/ (in file-name order, "0_Home.py" first) and runs the one
asked for; every page draws the shared sidebar itself, so each also runs alone (as the tests run them)."""
from pathlib import Path

import streamlit as st

ICONS = {"Home": "🔬", "Pruning": "✂️", "Quantization": "🎚️", "Distillation": "🧪", "Trade-offs": "📈",
         "Sensitivity": "🌡️"}


def _page(path: Path) -> st.Page:
    title = path.stem.split("_", 1)[-1]
    return st.Page(str(path.relative_to(Path(__file__).parent)), title=title, icon=ICONS.get(title),
                   url_path=title, default=title == "Home")


st.navigation([_page(p) for p in sorted((Path(__file__).parent / "pages").glob("[0-9]*_*.py"))]).run()
