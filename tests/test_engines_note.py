"""The Quantization page's paragraph on why the two int8 engines differ (slimui.quant.engines_note): every figure in
it is one of the table's, its words follow the figures (higher/lower, faster/slower/as fast), and the differences it
names are the two rows' own settings."""
from types import SimpleNamespace as NS

from slimui import quant as ui

NAME = "digits-cnn"   # one ONNX Runtime row (per channel) and one torch.ao row (per tensor)


def figures(ort: float, ao: float, kind: str | None = None) -> dict:
    return {"int8 (ONNX Runtime)": {"score": NS(value=ort), "kind": kind},
            "int8 (torch.ao)": {"score": NS(value=ao), "kind": kind}}


def latencies(fp32: tuple, ort: tuple, ao: tuple, ort_fp32: tuple | None = None) -> dict:
    def per_batch(ms: tuple) -> dict:
        return {1: NS(median_ms=ms[0]), 256: NS(median_ms=ms[1])}
    lat = {"fp32": per_batch(fp32), "int8 (ONNX Runtime)": per_batch(ort), "int8 (torch.ao)": per_batch(ao)}
    return lat | ({ui.ORT_FP32: per_batch(ort_fp32)} if ort_fp32 else {})


def test_the_words_follow_the_figures():
    text = ui.engines_note(NAME, figures(0.98, 0.97, "static"),
                           latencies((1.0, 10.0), (0.5, 5.0), (2.0, 2.5), ort_fp32=(0.8, 12.5)))
    assert "ONNX Runtime 98.00%, torch.ao 97.00%." in text and "measured higher accuracy" in text
    assert "faster at batch 1 (2.00× fp32 against 0.50×)" in text
    assert "slower at batch 256 (2.00× fp32 against 4.00×)" in text
    assert "ONNX Runtime's fp32 model runs 1.25× at batch 1, 0.80× at batch 256 as fast as torch's" in text
    assert "7 of their 8 bits" in text and "min/max, torch.ao by a histogram observer" in text   # static rows


def test_equal_figures_are_said_to_be_equal():
    text = ui.engines_note(NAME, figures(0.97, 0.97), latencies((1.0, 10.0), (2.0, 20.0), (2.0, 19.999)))
    assert "measured the same accuracy" in text
    assert "as fast at batch 1 (0.50× fp32 against 0.50×) and as fast at batch 256" in text
    assert "the engine, not int8" not in text   # no fp32 (ONNX Runtime) timing: nothing said about it


def test_without_timings_only_quality_and_without_both_engines_nothing():
    text = ui.engines_note(NAME, figures(0.96, 0.97), None)
    assert "measured lower accuracy." in text and "batch" not in text
    assert "ONNX Runtime's weights are per channel, torch.ao's per tensor" in text   # the rows' own settings
    assert ui.engines_note(NAME, {"int8 (torch.ao)": {"score": NS(value=0.9)}}, None) == ""
