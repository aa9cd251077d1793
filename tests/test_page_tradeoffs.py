"""AppTest of the Trade-offs page: the points and the frontier are slimcore's sweep and pareto, the x axis follows
its control, a chosen configuration is sent to its lab, the table downloads, and the pipeline waterfall is drawn from
the pipeline's stages beside the published ones, labelled as reference."""
import importlib
from collections import namedtuple

import numpy as np
import pandas as pd
import pytest

import slimcore
from tests.apptest_utils import app, array, figures, metrics, run_for_model, run_page

S = importlib.import_module("slimcore.sweep")  # the module: `slimcore.sweep` may be the exported function

PAGE = "views/4_Trade-offs.py"


@pytest.fixture(scope="module")
def expected():
    """The default grid computed directly with slimcore: L1, per layer, unstructured and channel-pruned."""
    s = slimcore.load_sample(slimcore.DEFAULT_SAMPLE)
    return S.sweep(s.model, s.data, S.PRUNE_RATIOS, S.BITS, ("l1",), (False, True))


@pytest.fixture
def page():
    return run_page(PAGE)


def points(fig) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """x, y and configuration names of every configuration drawn (all group traces, not the frontier or marker)."""
    xs, ys, names = [], [], []
    for t in fig["data"]:
        if t.get("mode") == "markers" and t["name"] != "chosen":
            xs += list(array(t["x"]))
            ys += list(array(t["y"]))
            names += [c[0] for c in t["customdata"]]
    return np.array(xs), np.array(ys), names


def trace(fig, name):
    return next(t for t in fig["data"] if t["name"].startswith(name))


def test_points_and_frontier_are_the_sweep_and_its_pareto_set(page, expected):
    assert set(figures(page)) == {"tradeoff_chart", "tradeoff_waterfall", "tradeoff_reference"}
    fig = figures(page)["tradeoff_chart"]
    x, y, names = points(fig)
    want = expected.dropna(subset=["score"]).set_index("config")
    assert sorted(names) == sorted(want.index)
    order = [want.index.get_loc(n) for n in names]
    assert x == pytest.approx(want.size_bytes.to_numpy()[order] / 1024)
    assert y == pytest.approx(want.score.to_numpy()[order] * 100)
    front = S.pareto(want.reset_index(), "size_bytes", "score")
    line = trace(fig, "Pareto frontier")
    assert array(line["x"]) == pytest.approx(front.size_bytes.to_numpy() / 1024)
    assert array(line["y"]) == pytest.approx(front.score.to_numpy() * 100)
    assert metrics(page)["Configurations"] == f"{len(expected):,}"
    assert metrics(page)["On the size frontier"] == f"{len(front):,}"
    symbols = [s for t in fig["data"] if t.get("mode") == "markers" and t["name"] != "chosen"
               for s in t["marker"]["symbol"]]
    labels = [want.size_label[n] for n in names]
    assert symbols == ["circle-open" if lab == "modelled" else "circle" for lab in labels]  # open = modelled
    assert not page.error


def test_the_table_lists_every_experiment_with_units_and_labels(page, expected):
    table = page.dataframe[0].value
    assert len(table) == len(expected)
    assert {"test accuracy, % (measured)", "size, KiB", "size is", "MACs per example",
            "latency b=256, ms (measured)"} <= set(table.columns)
    assert set(table["size is"]) == {"measured", "modelled"}
    assert table["Pareto (size)"].sum() == len(S.pareto(expected, "size_bytes", "score"))


def test_the_csv_download_holds_the_raw_rows(page, expected):
    from slimui import tradeoffs as ui

    labels = [b.proto.label for b in page.get("download_button")]
    assert "Download the experiments (CSV)" in labels and "Download model (zip)" in labels  # the table; the point
    frame = ui.sweep(slimcore.DEFAULT_SAMPLE, ("l1",), (False, True), "layer", False)
    back = pd.read_csv(__import__("io").BytesIO(ui.csv(frame)))
    assert list(back.columns) == [c for c in S.COLUMNS if c != "detail"] and len(back) == len(expected)
    assert back.score.to_numpy() == pytest.approx(frame.score.to_numpy(), nan_ok=True)


def test_the_x_axis_follows_its_control(page, expected):
    page.radio(key="tradeoff_x").set_value("MACs").run()
    assert not page.exception
    fig = figures(page)["tradeoff_chart"]
    assert "multiply-accumulates" in fig["layout"]["xaxis"]["title"]["text"]
    x, _, names = points(fig)
    want = expected.dropna(subset=["score"]).set_index("config").macs
    assert x == pytest.approx(want[names].to_numpy())
    page.radio(key="tradeoff_x").set_value("latency").run()
    assert not page.exception and not page.error
    fig = figures(page)["tradeoff_chart"]
    x, _, names = points(fig)
    fp32 = expected[(expected.bits == 32) & expected.score.notna()]
    assert sorted(names) == sorted(fp32.config) and (x > 0).all()  # only real fp32 models are timed
    assert page.dataframe[0].value["latency b=256, ms (measured)"].notna().sum() == len(fp32)


def test_choosing_a_configuration_shows_it_and_rings_it(page, expected):
    page.selectbox(key="tradeoff_point").set_value("L1 50% weights · 4-bit").run()
    want = expected.set_index("config").loc["L1 50% weights · 4-bit"]
    shown = metrics(page)
    assert shown["Test accuracy (measured)"] == f"{want.score:.2%}"
    assert shown["Size (modelled)"] == f"{want.size_bytes / 1024:,.1f} KiB"
    assert shown["Latency (measured)"] == "not timed"  # a fake-quantized model runs fp32 kernels
    ring = trace(figures(page)["tradeoff_chart"], "chosen")
    assert array(ring["x"])[0] == pytest.approx(want.size_bytes / 1024)


def test_a_configuration_opens_in_the_pruning_lab_with_its_settings():
    at = app("app.py").run()
    at.switch_page(PAGE).run()
    at.selectbox(key="tradeoff_point").set_value("L1 30% channels · fp32").run()
    assert at.button(key="tradeoff_to_quant").disabled  # fp32: no bit width to send
    at.button(key="tradeoff_to_pruning").click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Pruning lab"]
    assert at.slider(key="prune_ratio").value == 0.3 and at.toggle(key="prune_structured").value is True
    assert at.selectbox(key="prune_method").value == "l1" and at.radio(key="prune_scope").value == "layer"


def test_a_configuration_opens_in_the_quantization_lab_with_its_bit_width():
    at = app("app.py").run()
    at.switch_page(PAGE).run()
    at.radio(key="tradeoff_granularity").set_value("per channel").run()
    at.selectbox(key="tradeoff_point").set_value("L1 20% weights · 3-bit").run()
    at.button(key="tradeoff_to_quant").click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Quantization lab"]
    assert at.slider(key="bit_width").value == 3 and at.radio(key="granularity").value == "per channel"


def test_no_method_is_a_message_not_an_error(page):
    page.multiselect(key="tradeoff_methods").set_value([]).run()
    assert not page.exception and not page.error
    assert "at least one pruning method" in page.info[0].value


FakeStage = namedtuple("FakeStage", "name score bytes label ratio detail")


@pytest.fixture
def fake_pipeline():
    """Stage-like records in the page's store of finished runs (so the page draws them instead of running)."""
    from slimui import tradeoffs as ui
    from slimui import work

    sizes = [200_000, 20_000, 7_000, 5_000]
    stages = tuple(FakeStage(n, a, b, "measured", sizes[0] / b, "fake")
                   for n, a, b in zip(["original (fp32)", "pruned + fine-tuned", "weight sharing", "Huffman coded"],
                                      [0.97, 0.965, 0.96, 0.96], sizes))
    key = ui.pipeline_task(slimcore.DEFAULT_SAMPLE, 0.92, 4).key   # the page's job in the background worker
    before = work.worker().get(key)
    work.worker().put(key, stages)
    yield stages
    work.forget(key)
    if before is not None:
        work.worker().put(key, before.result)


def test_the_waterfall_is_drawn_from_the_stages_beside_the_published_ones(fake_pipeline):
    at = app(PAGE).run()
    assert not at.exception
    figs = figures(at)
    fall = figs["tradeoff_waterfall"]["data"][0]
    sizes = [st.bytes for st in fake_pipeline]
    assert list(array(fall["y"])) == [sizes[0]] + [b - a for a, b in zip(sizes, sizes[1:])]
    assert fall["measure"] == ["absolute", "relative", "relative", "relative"]
    assert figs["tradeoff_waterfall"]["layout"]["yaxis"]["title"]["text"] == "bytes (measured)"
    ticks = figs["tradeoff_waterfall"]["layout"]["xaxis"]["ticktext"]
    assert ticks[-1].startswith("Huffman coded<br>4.9 KiB<br>40.0x")
    bars = {t["name"]: t for t in figs["tradeoff_reference"]["data"]}
    ours = next(t for n, t in bars.items() if n.startswith("ours"))
    ref = next(t for n, t in bars.items() if n.endswith("(reference)"))
    assert list(array(ours["y"])) == pytest.approx([st.ratio for st in fake_pipeline])
    assert list(array(ref["y"])) == [1, 12, 32, 40] and "LeNet-300-100" in ref["name"]
    table = at.dataframe[1].value
    assert list(table["stage"]) == [st.name for st in fake_pipeline]
    assert list(table["published ratio (reference)"]) == ["1x", "12x", "32x", "40x"]


@pytest.mark.parametrize("name", slimcore.list_samples("classifier"))
def test_every_sample_model_renders(name):
    at = run_for_model(PAGE, name)
    assert {"tradeoff_chart", "tradeoff_reference"} <= set(figures(at))


@pytest.mark.usefixtures("fresh_results")   # nothing found computed by another test
def test_a_slow_family_offers_deep_compression_behind_its_button_and_draws_a_finished_run():
    """minilm: the section is there before any grid is built; a finished run (here, stage-like records in the shared
    store) is drawn in the family's units: MiB and mean cosine."""
    from slimui import tradeoffs as ui
    from slimui import work

    at = app(PAGE, timeout=300)
    at.session_state["model_name"] = "minilm"
    at.run()
    assert not at.exception and at.button(key="tradeoff_run") and at.button(key="tradeoff_pipe_run")
    assert "tradeoff_waterfall" not in figures(at)
    sizes = [90_000_000, 70_000_000, 52_000_000, 50_000_000]
    stages = tuple(FakeStage(n, c, b, "measured", sizes[0] / b, "fake")
                   for n, c, b in zip(["original (fp32)", "pruned + fine-tuned", "weight sharing", "Huffman coded"],
                                      [1.0, 0.86, 0.85, 0.85], sizes))
    key = ui.pipeline_task("minilm", 0.5, 5).key   # the family's default setting
    work.worker().put(key, stages)
    try:
        at.run()
    finally:
        work.forget(key)
    assert not at.exception
    ticks = figures(at)["tradeoff_waterfall"]["layout"]["xaxis"]["ticktext"]
    assert ticks[-1] == f"Huffman coded<br>{50_000_000 / 2**20:,.1f} MiB<br>1.8x · 0.8500"
    table = at.dataframe[-1].value
    assert list(table["test mean cosine"]) == [1.0, 0.86, 0.85, 0.85] and "size, MiB" in table
