"""The Export section of a lab: download the compressed model a page shows (state dict, TorchScript, ONNX) with its
recipe and measured figures, as one zip. The zip is built by slimcore.export in a temporary folder only when the
button is pressed, and kept per (model, recipe) for every session."""
from __future__ import annotations

import hashlib
import tempfile
from dataclasses import replace

import streamlit as st

from slimcore import export as E
from slimcore import recipe as R
from slimcore import upload as U
from slimcore.recipe import Recipe

from . import cache, state

NAMES = {"state_dict": "state dict", "torchscript": "TorchScript", "onnx": "ONNX"}


@st.cache_data(show_spinner=False, max_entries=2)   # a MiniLM bundle holds the model three times: ~250 MB
def bundle(name: str, recipe_json: str) -> bytes:
    """The zip of an applied recipe: every exported file, recipe.yaml and figures.json (figures measured anew)."""
    s = cache.sample(name)
    with tempfile.TemporaryDirectory(prefix="slimlab-export-") as out:
        _, exported = E.export_recipe(s, Recipe.from_json(recipe_json), out)
        return E.archive(exported)


def export_panel(name: str, recipe: Recipe, choices: dict[str, Recipe] | None = None, narrow: bool = False) -> None:
    """Draw the Export section for a recipe applied to the model `name`; with `choices` ({label: recipe}), the user
    picks which of them to export. `narrow` (drawn in a side column): the button above the command, not beside it,
    where a third of the column cut the button's label."""
    st.subheader("Export")
    if choices:
        label = st.radio("What to export", list(choices), key="export_choice", horizontal=True)
        recipe = choices.get(label, recipe)
    recipe = recipe if recipe.model == name else replace(recipe, model=name)
    text = recipe.to_json()
    digest = hashlib.sha1(text.encode()).hexdigest()[:10]
    formats, missing = E.plan(recipe)
    st.caption(f"{recipe.describe(state.label(name))}. The zip holds the model as "
               f"{', '.join(NAMES[f] for f in formats)}, each loaded back and checked against the model, with "
               "`recipe.yaml` and the measured figures (`figures.json`); it is built when you press the button (a "
               "few seconds).")
    left, right = (st.container(), st.container()) if narrow else st.columns([1, 2])
    left.download_button("Download model (zip)", lambda: bundle(name, text), file_name=f"slimlab-{name}-{digest}.zip",
                         mime="application/zip", key=f"export_zip_{digest}", on_click="ignore",
                         icon=":material/download:")
    # the CLI reads the file itself: an upload's name means nothing outside this server
    model = (" --model YOUR_MODEL_FILE" + (" --data YOUR_DATA.npz" if cache.sample(name).data.name == "upload" else "")
             if U.is_upload(name) else "")
    right.code(f"python -m slimcore apply --recipe recipe.yaml{model} --out export", language="bash", wrap_lines=True)
    for fmt, why in missing.items():
        st.caption(f"No {NAMES[fmt]} file: {why}.")
    with st.expander("Recipe (YAML)"):
        st.code(R.dumps(recipe), language="yaml")
