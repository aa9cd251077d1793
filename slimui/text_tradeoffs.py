"""Trade-offs lab on the text sample (minilm): a grid of pruning x precision, embedding quality against size."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from slimcore import plots
from slimcore import text as T
from slimcore import text_prune as TP
from slimcore import text_tradeoffs as TT
from slimcore.text import TextSample

from . import cache, state
from . import text as ui

RATIOS = (0.0, 0.1, 0.25, 0.5, 0.75)
RESULTS = "text_grid_results"  # this session's grids: {(name, cfg): frame}


@st.cache_data(show_spinner=False, max_entries=8)
def _grid(name: str, cfg: TT.TextGridConfig, _progress=None) -> pd.DataFrame:
    s = cache.sample(name)
    return TT.grid(s.model, ui.split(name), ui.reference(name), cfg, _progress)


@st.cache_data(show_spinner=False, max_entries=16)
def _point_quality(name: str, kind: str, ratio: float, precision: str) -> T.TextQuality:
    net = TT.build(cache.sample(name).model, kind, ratio, precision)[0]
    return T.evaluate(net, ui.split(name), ui.reference(name))


@st.cache_data(show_spinner=False, max_entries=8)
def _timing(name: str, kind: str, ratio: float, precision: str):
    s = cache.sample(name)
    net = TT.build(s.model, kind, ratio, precision)[0]
    return T.latencies({"original": s.model, "point": net}, ui.split(name, False), max_seconds=1.5)


def page(s: TextSample, teacher: bool) -> None:
    name = s.name
    st.title("Trade-offs — minilm (text)")
    st.caption("Every combination of pruning and precision you choose, built for real and measured on held-out "
               "sentences: how close the embeddings stay to the original's against how small the model gets. Filled "
               "markers are measured sizes (real files), open ones modelled (bit counts).")
    c1, c2, c3 = st.columns(3)
    kinds = c1.multiselect("Pruning", list(TP.KINDS), default=["unstructured", "ffn", "heads"], format_func=TP.KINDS.get,
                           key="text_grid_kinds")
    ratios = c2.multiselect("Prune ratios", list(RATIOS), default=[0.0, 0.25, 0.5], key="text_grid_ratios",
                            format_func=lambda r: f"{r:.0%}")
    precisions = c3.multiselect("Precision", list(TT.PRECISIONS), default=["fp32", "int8", "int4"],
                                format_func=TT.precision_label, key="text_grid_precisions")
    with state.friendly_errors():
        cfg = TT.TextGridConfig(tuple(kinds), tuple(sorted(ratios)), tuple(precisions))
    n = len(cfg.points())
    key = (name, cfg)
    results = st.session_state.setdefault(RESULTS, {})
    if key not in results:
        offer = st.empty()  # the offer goes away once taken: the build's progress bar replaces it
        with offer.container():
            st.info(f"{n} points to build and measure on {ui.where(name)}: about 3 s each on 2 cores (21 points "
                    "took 57 s here, first visit).")
            go = st.button(f"Build the {n} points", key="text_grid_run", type="primary")
        if not go:
            st.stop()
        offer.empty()
        bar = st.progress(0.0, "Building the grid…")
        results[key] = _grid(name, cfg, lambda i, total, label: bar.progress(i / total, f"{i}/{total}: {label}"))
        bar.empty()
    frame = results[key]

    chosen = st.selectbox("Point to inspect", list(frame["point"]), key="text_grid_point",
                          index=int(frame["frontier"].to_numpy().nonzero()[0][-1]) if frame["frontier"].any() else 0)
    i = int(frame.index[frame["point"] == chosen][0])
    st.plotly_chart(plots.tradeoff_scatter(
        frame["size, MiB"], frame["mean cosine"], frame["point"], [TT.precision_label(p) for p in frame["precision"]],
        frame["size is"], list(frame.index[frame["frontier"]]), chosen=i, reference=1.0, notes=frame["size rule"],
        title="Mean cosine to the original against size", x_title="size", x_unit=" MiB", log_x=False,
        y_title="mean cosine", percent=False), key="text_grid_scatter")
    table = ("the points of precision *" + TT.precision_label("int8+emb") + "* store it in 8 bits as well, and only "
             "they go below that" if (frame["precision"] == "int8+emb").any() else "choose the precision *"
             + TT.precision_label("int8+emb") + "* to store it in 8 bits as well")
    st.caption(f"Measured on {ui.where(name)}. About half of the original's {ui.size_bytes(name) / 2**20:.1f} MiB is "
               "the word-embedding table (30,522 x 384), which neither pruning nor quantizing the Linear layers "
               f"touches: that is why their sizes bunch up above 45 MiB; {table}.")

    row = frame.loc[i]
    st.subheader(f"Chosen: {chosen}")
    q = _point_quality(name, row["pruning"], float(row["ratio"]), row["precision"])
    ui.show_quality(q, ui.original_quality(name), name)
    st.markdown(f"Size **{row['size, MiB']:.1f} MiB** ({row['size is']}: {row['size rule']}).")
    if st.button("Time this point against the original", key="text_grid_time"):
        with st.spinner("Timing both encoders side by side…"):
            lat = _timing(name, row["pruning"], float(row["ratio"]), row["precision"])
        st.dataframe(pd.DataFrame([{"encoder": k, "batch 1, ms": round(v[0].median_ms, 2),
                                    "batch 1 IQR, ms": round(v[0].iqr_ms, 2), "batch 32, ms": round(v[1].median_ms, 1),
                                    "batch 32 IQR, ms": round(v[1].iqr_ms, 1)} for k, v in lat.items()]),
                     hide_index=True)
        b1, b32 = lat["original"]
        st.caption(f"Measured on this server's CPU, round-robin, on real test sentences: {b32.describe()}. Speed-up at "
                   f"batch 32: {b32.median_ms / lat['point'][1].median_ms:.2f}x; at batch 1: "
                   f"{b1.median_ms / lat['point'][0].median_ms:.2f}x. Masked weights and fake quantization run the "
                   "same dense fp32 kernels as the original.")

    with st.expander("All points"):
        st.dataframe(frame.round(4), hide_index=True, width="stretch")
        st.download_button("Download CSV", frame.to_csv(index=False).encode(), "minilm-tradeoffs.csv", "text/csv",
                           key="text_grid_csv")
