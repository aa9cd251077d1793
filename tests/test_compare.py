"""A/B comparison's pure parts: how figures are written, their differences, which side is better, the table."""
import math

import pytest

from slimui import compare as C
from slimui import urlstate
from slimui.compare import Figure


def test_figures_are_written_as_the_labs_write_them():
    assert C.written(0.8969, "percent") == "89.69%"
    assert C.written(462413, "bytes") == "451.6 KiB"
    assert C.written(3 * 2 ** 20, "bytes") == "3.0 MiB"
    assert C.written(512, "bytes") == "512 B"
    assert C.written(57670, "count") == "57,670"
    assert C.written(3.9712, "ratio") == "3.97×"
    assert C.written(math.inf, "db") == "∞ dB (exact)"
    assert C.written(None, "percent") == C.written(float("nan"), "bytes") == "—"


def test_differences_are_b_minus_a_in_the_figures_units():
    assert C.difference(0.8969, 0.4930, "percent") == "-40.39 pt"
    assert C.difference(0.97, 0.9, "number") == "-0.0700"
    assert C.difference(2048, 1024, "bytes") == "−1.0 KiB (0.50× A)"
    assert C.difference(1024, 1024, "bytes") == "±0 B (1.00× A)"
    assert C.difference(100, 57, "count") == "-43"
    assert C.difference(42.0, 17.3, "db") == "-24.7 dB"
    assert C.difference(math.inf, math.inf, "db") == "same"
    assert C.difference(None, 3, "count") == "—"
    assert C.difference("a", "b", "text") == "different"


@pytest.mark.parametrize("higher,a,b,better", [(True, 0.9, 0.8, "A"), (True, 0.8, 0.9, "B"), (False, 10, 5, "B"),
                                                (False, 5, 10, "A"), (None, 1, 2, ""), (True, 1, 1, "")])
def test_the_better_side_follows_the_figures_direction(higher, a, b, better):
    assert C.verdict(a, b, Figure("x", a, "number", higher)) == better


def test_the_table_puts_a_beside_b_and_marks_what_is_missing():
    a = {"score": Figure("Accuracy", 0.9, "percent", True, "measured"), "only_a": Figure("Old", 3, "count")}
    b = {"score": Figure("Accuracy", 0.5, "percent", True, "measured"),
         "bytes": Figure("Size", 1000, "bytes", False, "modelled")}
    t = C.table(a, b)
    assert list(t.columns) == ["figure", "A", "B (now)", "B − A", "better"]
    assert list(t.figure) == ["Accuracy (measured)", "Size (modelled)", "Old (measured)"]
    row = t.iloc[0]
    assert (row.A, row["B (now)"], row["B − A"], row.better) == ("90.00%", "50.00%", "-40.00 pt", "A")
    assert t.iloc[1].A == "—" and t.iloc[1]["B − A"] == "—"
    assert t.iloc[2]["B (now)"] == "—"
    assert C.table(None, b).A.tolist() == ["—", "—"]


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown kind"):
        Figure("x", 1, "furlongs")


def test_a_setting_leaves_out_what_only_chooses_the_view_and_changes_name_what_differs():
    spec = urlstate.Spec(urlstate.Float("prune_ratio", 0.5, 0.0, 0.99, 0.01),
                         urlstate.Choice("prune_method", ["l1", "random"]),
                         urlstate.Choice("prune_layer", ["a", "b"]))
    setting = C.setting(spec, "prune_layer")
    assert list(setting.params) == ["prune_ratio", "prune_method"]
    assert C.changes({"prune_ratio": 0.5}, {"prune_ratio": 0.8, "prune_method": "random"}, setting) == [
        "prune_ratio: 0.5 → 0.8", "prune_method: l1 → random"]
    assert C.changes({"prune_ratio": 0.5}, {"prune_ratio": 0.5}, setting) == []
