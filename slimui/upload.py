"""The home page's upload form and an uploaded model's card. Reading the files is slimcore.upload's job."""
from __future__ import annotations

import streamlit as st

from slimcore import Sample
from slimcore import upload as U

from . import cache, state

DONE, ERROR = "upload_done", "upload_error"  # the files last read (their ids), and what was wrong with them

FORMATS = ("**Model:** a TorchScript archive (`torch.jit.save`), a `torch.export` program (`.pt2`), or a state dict "
           "of one of the sample architectures (`torch.save(model.state_dict(), f)` or safetensors). "
           f"Up to {U.MAX_MODEL_BYTES // 10**6} MB per file (as the browser counts: 10^6 bytes a MB). Nothing in the file is ever run as Python: state dicts are read "
           "with `weights_only=True`, and TorchScript and exported graphs are rebuilt from standard layers "
           f"({', '.join(U.SUPPORTED)}).  \n**Evaluation data (optional):** a NumPy `.npz` with `x` (inputs, one "
           "example per row) and `y` (integer labels); it is split 60 / 10 / 30 % into train / validation / test "
           "(seed 0). Without it, a model that takes 8x8 digits or MNIST-1D signals is evaluated on those.")


def upload_form() -> None:
    """Two file pickers. A model file is read as soon as it is chosen (again when the data file changes): a good one
    becomes this session's model, a bad one gets a message and leaves all as it was."""
    st.markdown(FORMATS)
    c1, c2 = st.columns(2)
    model = c1.file_uploader("Model file", key="upload_model", help="TorchScript, torch.export (.pt2), state dict.")
    data = c2.file_uploader("Evaluation data (.npz, optional)", key="upload_data",
                            help="Arrays x (inputs) and y (integer labels).")
    if model is None:
        return
    key = f"{model.file_id}|{data.file_id if data else ''}"
    if st.session_state.get(DONE) != key:  # not read yet: read it now (once per choice of files)
        shown = U.display_name(model.name)
        try:
            with st.spinner(f"Reading {shown} and measuring it…"):
                s = cache.add_upload(model.getvalue(), model.name, data.getvalue() if data else None,
                                     data.name if data else None)
        except U.UploadError as e:
            message = f"**{state.md(shown)}** cannot be used: {state.md(str(e))}. Nothing else changed."
        except Exception as e:  # anything the checks did not foresee: still a message, never a traceback
            message = f"**{state.md(shown)}** could not be read ({type(e).__name__}). Nothing else changed."
        else:
            st.session_state[DONE], st.session_state[ERROR] = key, None
            state.my_uploads()[s.name] = shown  # this session's own name for it: the shared card may hold another's
            state.choose(s.name)
            st.rerun()
        st.session_state[DONE], st.session_state[ERROR] = key, message
    if st.session_state.get(ERROR):
        st.error(st.session_state[ERROR])


def upload_card(s: Sample) -> None:
    """What an uploaded model is: its file, format, how it was read and what it is evaluated on."""
    card = s.card
    st.subheader(f"{state.md(state.my_uploads().get(s.name, 'uploaded model'))} (your upload)")
    c1, c2 = st.columns([3, 2])
    with c1:
        sp = card["splits"]
        split = (f"{sp['train']:,} train / {sp['val']:,} validation / {sp['test']:,} test examples"
                 + (f" (split seed {sp['split_seed']})" if sp["split_seed"] is not None else ""))
        source = ("your data" if card["data_source"] == "uploaded" else
                  "a shipped dataset whose inputs the model takes (add a .npz to use your own)")
        st.markdown(f"**File:** {card['file_bytes'] / 2**20:,.2f} MiB, {card['format']}, sha256 "
                    f"`{card['sha256'][:16]}…`; read as {card['architecture']}.  \n"
                    f"**Evaluated on** {source}: {card['dataset']} — {split}.")
        if card["sample_architecture"] is None:
            st.caption("Rebuilt from the file's graph as standard layers; the rebuilt model was checked to give the "
                       f"file's own outputs (within {U.TOLERANCE:g}).")
    with c2:
        with st.expander("Module"):
            st.code(card["module"], language="text")
