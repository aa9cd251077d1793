"""The home page's upload form and an uploaded model's card. Reading the files is slimcore.upload's job."""
from __future__ import annotations

import streamlit as st

from slimcore import architectures as A
from slimcore import graph as G
from slimcore import upload as U

from . import cache, state

DONE, ERROR = "upload_done", "upload_error"  # the files last read (their ids), and what was wrong with them

FORMATS = ("**Model:** a `torch.export` program (`.pt2`: any graph, residual networks and attention included), a "
           "TorchScript archive (`torch.jit.save`) of a chain of layers, or a state dict (`torch.save(model."
           "state_dict(), f)` or safetensors) of one of the sample architectures or of an architecture named below "
           f"({', '.join(A.ARCHITECTURES)}, with torchvision's parameter names), or a zipped Hugging Face folder "
           "(`config.json`, `model.safetensors`: a BERT sentence encoder with its `tokenizer.json`, or a ViT or "
           "ResNet image classifier). "
           f"Up to {U.MAX_MODEL_BYTES // 10**6} MB per file (as the browser counts: 10^6 bytes a MB). Nothing in the "
           "file is ever run as Python: state dicts are read with `weights_only=True`; a program runs as its graph "
           "of PyTorch's own tensor operations, with its Linear, Conv and normalisation calls as standard layers.  \n"
           "**Evaluation data (optional):** a NumPy `.npz` with `x` (inputs, one example per row, shaped as the "
           "model takes them: e.g. 3 x 32 x 32 images) and `y` (integer labels); it is split 60 / 10 / 30 % into "
           "train / validation / test (seed 0). Without it, a model that takes 8x8 digits or MNIST-1D signals is "
           "evaluated on those.")
FROM_FILE = "(the file says)"


def upload_form() -> None:
    """Two file pickers. A model file is read as soon as it is chosen (again when the data file changes): a good one
    becomes this session's model, a bad one gets a message and leaves all as it was."""
    st.markdown(FORMATS)
    c1, c2, c3 = st.columns([2, 2, 1])
    model = c1.file_uploader("Model file", key="upload_model", help="torch.export (.pt2), TorchScript, state dict.")
    data = c2.file_uploader("Evaluation data (.npz, optional)", key="upload_data",
                            help="Arrays x (inputs) and y (integer labels).")
    arch = c3.selectbox("Architecture", [FROM_FILE, *A.ARCHITECTURES], key="upload_arch",
                        help="For a state dict of a well-known architecture: its name, so the weights are loaded "
                             "into it. Leave it for a program (.pt2, TorchScript) or a sample's state dict.")
    architecture = None if arch == FROM_FILE else arch
    if model is None:
        return
    key = f"{model.file_id}|{data.file_id if data else ''}|{architecture or ''}"
    if st.session_state.get(DONE) != key:  # not read yet: read it now (once per choice of files)
        shown = U.display_name(model.name)
        try:
            with st.spinner(f"Reading {shown} and measuring it…"):
                s = cache.add_upload(model.getvalue(), model.name, data.getvalue() if data else None,
                                     data.name if data else None, architecture)
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


def upload_card(s: cache.AnySample) -> None:
    """What an uploaded model is: its file, format, how it was read and what it is evaluated on."""
    if getattr(s, "kind", "") == "text":
        return encoder_card(s)
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
        if card.get("graph"):
            st.caption("Runs as its own graph: PyTorch's tensor operations, with the Linear, Conv and normalisation "
                       "calls as standard layers; checked to give the program's own outputs.")
            coupled = G.coupled_note(s.model)
            if coupled:
                st.caption(coupled)
        elif card["sample_architecture"] is None:
            st.caption("Rebuilt from the file's graph as standard layers; the rebuilt model was checked to give the "
                       f"file's own outputs (within {U.TOLERANCE:g}).")
        for note in G.limits(s.model):
            st.info(note)
    with c2:
        with st.expander("Module"):
            st.code(card["module"], language="text")


def encoder_card(s) -> None:
    """An uploaded sentence encoder (a Hugging Face folder): its file, what was read from it, what it is evaluated
    on."""
    card, sent = s.card, s.card["sentences"]
    st.subheader(f"{state.md(state.my_uploads().get(s.name, 'uploaded model'))} (your upload)")
    c1, c2 = st.columns([3, 2])
    with c1:
        named = f" ({state.md(card['model'])})" if card.get("model") and card["model"] != s.name else ""
        st.markdown(f"**File:** {card['file_bytes'] / 2**20:,.2f} MiB, {card['format']}{named}, sha256 "
                    f"`{card['sha256'][:16]}…`; read as {card['architecture']}, weights {card['weights_dtype']}, "
                    f"{card['parameters']:,} parameters.  \n**Runs as:** {card['encoder']}.  \n"
                    f"**Evaluated on** SlimLab's sentence set ({card['evaluation']}): {sent['test']} held-out test "
                    f"sentences ({sent['test_pairs']} pairs), the first {sent['quick']} the sliders' quick set; "
                    f"{sent['train']} training sentences for distillation and calibration. Quality is the mean cosine "
                    "of each compressed encoder's embeddings to this encoder's own.")
        for note in card.get("notes", []):
            st.caption(state.md(str(note)))
    with c2:
        with st.expander("Module"):
            st.code(str(s.model), language="text")
