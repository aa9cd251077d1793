"""Charts a student reads without help (issue 19, item 5): pruned and kept weights in two colours, both named; the
teacher's probabilities on a log axis; digits with square pixels; a note on why binary can beat 2-bit weights."""
import math

import numpy as np
import plotly.graph_objects as go
import pytest

import slimcore
from slimcore import distillation as D
from slimcore import plots
from slimcore import pruning as P
from tests.apptest_utils import array, figures, run_page
from tests.conftest import load_classifier


def _counts(trace) -> np.ndarray:
    return np.asarray(trace.y, dtype=np.int64)


def _colour_at(scale, z: float) -> str:
    """The colour a discrete (piecewise constant) colour scale gives to z in [0, 1]: its last stop at or below z."""
    return [c for v, c in scale if v <= z][-1]


# --- pruned and kept weights ----------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["l1", "random"])
def test_the_histogram_splits_every_bar_into_kept_and_pruned_as_the_mask_does(digits_cnn, method):
    keep = P.masks(digits_cnn.model, P.PruneConfig(0.5, method))["fc1"]
    w = digits_cnn.model.fc1.weight.detach()
    cut = P.threshold(digits_cnn.model, {"fc1": keep}, "fc1") if method == "l1" else None
    fig = plots.weight_histogram(w.numpy().ravel(), "fc1", threshold=cut, after=w[keep].numpy())
    every, kept, pruned = fig.data   # the page's tests read all weights first, then those kept
    assert (every.name, kept.name, pruned.name) == ("all weights", "kept", "pruned")
    assert kept.type == pruned.type == "bar" and fig.layout.barmode == "stack"
    assert kept.marker.color != pruned.marker.color
    assert kept.showlegend is not False and pruned.showlegend is not False
    assert _counts(kept).sum() == int(keep.sum()) and _counts(pruned).sum() == int((~keep).sum())
    assert _counts(kept).sum() + _counts(pruned).sum() == w.numel() == _counts(every).sum()
    assert (_counts(kept) + _counts(pruned) == _counts(every)).all()   # bar by bar
    if method == "l1":   # magnitude pruning: no bar wholly beyond the cut holds a pruned weight
        step = every.x[1] - every.x[0]
        beyond = (np.asarray(every.x) - step / 2 > cut) | (np.asarray(every.x) + step / 2 < -cut)
        assert beyond.any() and (_counts(pruned)[beyond] == 0).all()


def test_a_histogram_of_the_weights_alone_is_one_trace():
    fig = plots.weight_histogram(np.linspace(-1, 1, 101))
    assert [t.name for t in fig.data] == ["weights"] and _counts(fig.data[0]).sum() == 101


@pytest.mark.parametrize("mask", [
    np.array([[True, False, True], [False, False, True]]),            # a Linear layer's mask
    np.random.default_rng(0).random((4, 2, 3, 3)) > 0.5,              # a Conv2d's, its filters tiled
    np.eye(6, 12, dtype=bool),                                        # the heads each encoder layer keeps (kept_map)
])
def test_the_mask_has_two_colours_named_pruned_and_kept(mask):
    fig = plots.mask_heatmap(mask, "a title")
    heat = fig.data[0]
    scale = [(v, c) for v, c in heat.colorscale]
    assert len({c for _, c in scale}) == 2, "a discrete scale of two colours, no shades between them"
    assert (heat.zmin, heat.zmax) == (0, 1)
    ticks = dict(zip(heat.colorbar.ticktext, heat.colorbar.tickvals))
    assert set(ticks) == {"pruned", "kept"} and heat.showscale is not False
    assert _colour_at(scale, ticks["pruned"]) != _colour_at(scale, ticks["kept"])
    assert _colour_at(scale, 0) == _colour_at(scale, ticks["pruned"])   # z 0 (pruned) takes the colour named pruned
    assert _colour_at(scale, 1) == _colour_at(scale, ticks["kept"])
    z = np.asarray(heat.z)
    assert z.sum() == mask.sum() and z.size == mask.size
    assert "pruned" in fig.layout.title.text and "dark" not in fig.layout.title.text   # the colour bar says it


def test_the_histogram_and_the_mask_use_the_same_two_colours():
    hist = plots.weight_histogram(np.linspace(-1, 1, 11), after=np.array([-1.0, 1.0]))
    heat = plots.mask_heatmap(np.array([[True, False]])).data[0]
    ticks = dict(zip(heat.colorbar.ticktext, heat.colorbar.tickvals))
    scale = [(v, c) for v, c in heat.colorscale]
    assert hist.data[1].marker.color == _colour_at(scale, ticks["kept"])
    assert hist.data[2].marker.color == _colour_at(scale, ticks["pruned"])


# --- the teacher's probabilities on a log axis ------------------------------------------------------------------

def _soft(log: bool, p1=None):
    s = load_classifier(slimcore.DEFAULT_SAMPLE)
    logits = slimcore.predict(s.model, s.test.x[:1])[0]
    p1 = D.soften(logits, 1.0) if p1 is None else p1
    pt = D.soften(logits, 4.0)
    return p1, pt, plots.soft_targets(p1.tolist(), pt.tolist(), 4.0, (0.1, 1.0), int(s.test.y[0]), log=log)


def test_on_a_log_axis_every_probability_shows_even_zero():
    p1 = D.soften(slimcore.predict(slimcore.load_sample(slimcore.DEFAULT_SAMPLE).model,
                                   slimcore.load_sample(slimcore.DEFAULT_SAMPLE).test.x[:1])[0], 1.0).clone()
    p1[3] = 0.0                                       # a probability that underflowed
    p1, pt, fig = _soft(True, p1)
    assert fig.layout.yaxis.type == "log"
    bottom, top = fig.layout.yaxis.range
    for trace, p in zip(fig.data, (p1, pt)):
        y = np.asarray(trace.y, dtype=float)
        assert (y > 0).all(), "no zero on a log axis: it would not be drawn"
        assert (np.log10(y) > bottom).all() and (np.log10(y) <= top).all(), "each bar stands above the axis bottom"
        assert np.asarray(trace.customdata, dtype=float) == pytest.approx((p * 100).tolist(), rel=1e-6)  # hover: real
    assert min(fig.data[0].y) > 0 and fig.data[0].y[3] == min(fig.data[0].y)
    assert any("drawn at" in a.text for a in fig.layout.annotations), "the floor is said"


def test_the_log_axis_shows_the_dark_knowledge_at_t_1():
    p1, _, fig = _soft(True)
    wrong = np.asarray(fig.data[0].y, dtype=float)
    wrong = np.delete(wrong, int(np.argmax(wrong)))
    bottom, top = fig.layout.yaxis.range
    # at T = 1 the wrong classes are far below 1 % of the linear axis; on the log axis they reach up its height
    assert wrong.max() < 1 and (np.log10(wrong.max()) - bottom) / (top - bottom) > 0.5


def test_the_floor_is_the_smallest_decade_drawn_and_said_only_when_a_bar_is_under_it():
    p = [0.99, 4e-3, 3e-5, 2e-7] + [1e-3] * 6
    fig = plots.soft_targets(p, p, 1.0, (0.1, 0.1), 0, log=True)
    assert fig.layout.yaxis.range[0] == pytest.approx(math.log10(1e-7 * 100) - 1)   # 2e-5 % -> decade 1e-5 %
    assert list(fig.data[0].y) == pytest.approx([v * 100 for v in p]) and not fig.layout.annotations


def test_the_linear_axis_is_as_before():
    p1, pt, fig = _soft(False)
    assert fig.layout.yaxis.type in (None, "linear", "-") and list(fig.layout.yaxis.range) == [0, 101]
    assert list(fig.data[0].y) == pytest.approx((p1 * 100).tolist()) and list(fig.data[1].y) == pytest.approx(
        (pt * 100).tolist())


def test_the_distillation_page_has_a_log_scale_kept_in_the_link():
    at = run_page("views/3_Distillation.py")
    assert at.checkbox(key="distill_log").value is False
    assert figures(at)["distill_soft"]["layout"]["yaxis"].get("type") != "log"
    at.checkbox(key="distill_log").check().run()
    assert not at.exception
    soft = figures(at)["distill_soft"]
    assert soft["layout"]["yaxis"]["type"] == "log" and (array(soft["data"][0]["y"]) > 0).all()
    assert at.query_params["distill_log"] == "1"
    at.checkbox(key="distill_log").uncheck().run()
    assert "distill_log" not in at.query_params, "the default is left out of the link"


# --- digits drawn square --------------------------------------------------------------------------------------

def test_every_digit_image_has_square_pixels():
    s = slimcore.load_sample("digits-cnn")
    x = s.test.x[:8].numpy()
    fig = plots.example_gallery(x, [0] * 8, [0] * 8, [1.0] * 8, cols=3)
    assert fig.layout.yaxis.scaleanchor == "x"
    for trace in fig.data:
        assert trace.type == "heatmap"
        xaxis = fig.layout["xaxis" + trace.xaxis[1:]]
        yaxis = fig.layout["yaxis" + trace.yaxis[1:]]
        assert yaxis.scaleanchor == trace.xaxis and yaxis.scaleratio == 1
        assert xaxis.constrain == yaxis.constrain == "domain"   # the image shrinks inside its cell


def test_a_signal_is_not_made_square():
    fig = plots.example_gallery(np.random.default_rng(0).random((2, 40)), [0, 1], [0, 0], [0.9, 0.8])
    assert {t.type for t in fig.data} == {"scatter"} and fig.layout.yaxis.scaleanchor is None


# --- why 1 bit can beat 2 ---------------------------------------------------------------------------------------

BITS = list(range(1, 17))


def _notes(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations if "1 bit beats 2" in (a.text or "")]


def test_the_bits_curve_explains_binary_when_it_beats_2_bits():
    acc = [0.87, 0.20, 0.97] + [0.975] * 13
    fig = plots.bits_curve(BITS, acc, (8, 0.975), 0.977, {"ternary": 0.9}, symmetric=True)
    (note,) = _notes(fig)
    flat = note.replace("<br>", " ")
    assert "3 levels {−s, 0, +s}" in flat and "s = max|w|" in flat and "round to 0" in flat and "mean|w|" in flat
    arrow = next(a for a in fig.layout.annotations if "1 bit beats 2" in (a.text or ""))
    assert (arrow.x, arrow.y) == (2, pytest.approx(20.0)) and arrow.showarrow   # it points at the 2-bit point
    assert arrow.ay + 35 < min(a * 100 for a in acc[2:]), "the box sits under the curve right of 2 bits"


@pytest.mark.parametrize("symmetric, words", [(False, "4 levels"), (None, "3 or 4 levels (symmetric: {−s, 0, +s}")])
def test_the_note_follows_the_scheme(symmetric, words):
    (note,) = _notes(plots.bits_curve(BITS, [0.6, 0.3] + [0.9] * 14, symmetric=symmetric))
    assert words in note.replace("<br>", " ")


@pytest.mark.parametrize("one, two", [(0.50, 0.90), (0.50, 0.50), (0.109, 0.100)])   # worse, equal, both at chance
def test_no_note_when_binary_does_not_beat_2_bits(one, two):
    assert not _notes(plots.bits_curve(BITS, [one, two] + [0.95] * 14, symmetric=True))


def test_no_note_without_both_points():
    assert not _notes(plots.bits_curve([2, 4, 8], [0.1, 0.9, 0.95], symmetric=True))
    assert not _notes(plots.bits_curve([1, 4, 8], [0.8, 0.9, 0.95], symmetric=True))


def test_the_note_moves_up_when_the_curve_stays_low():
    fig = plots.bits_curve(BITS, [0.3, 0.1] + [0.2] * 14, symmetric=True)
    arrow = next(a for a in fig.layout.annotations if "1 bit beats 2" in (a.text or ""))
    assert arrow.yanchor == "top" and arrow.ay > 90 and math.isclose(arrow.y, 10.0)
