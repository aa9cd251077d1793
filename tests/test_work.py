"""What the pages keep and prepare in the background is what a slider move would compute: the quality curve's
points are the slider's figures at each bit width, and a slow model's prepared slider positions are its reports."""
from dataclasses import replace

import pytest

from slimcore import quantization as Q
from slimui import warmup, work


def test_a_quantization_curve_prepares_every_bit_width_of_the_slider():
    from slimui import quant as ui

    name = "digits-mlp"
    cfg = warmup.quant_default(name)
    line = ui.curve_now(name, ui.curve_key(cfg))
    for bits, point in zip(line["bits"], line["scores"]):
        slider = ui.config(bits, False, "symmetric", "per tensor", ui.TARGETS[0])   # as the page builds it
        assert work.on_disk("fake_score", name, (ui.key(slider), ui.SPLIT))
        assert work.on_disk("quant_variant", name, ui.key(slider))
        assert ui.fake_score(name, ui.key(slider)) == point
        direct = ui.scorer(name)(Q.quantize(ui.cache.sample(name).model, config=slider, layers=ui.layers(name)))
        assert direct.value == point.value


@pytest.mark.slow
def test_an_encoders_slider_positions_are_prepared_as_the_page_computes_them():
    from slimcore import text_prune as TP
    from slimui import pruning as ui

    name = "minilm"
    cfg = replace(TP.config(0.3, "heads"), method="l1", scope="layer")
    ui.prefetch(name, cfg, (0.25, 0.3))
    for r in (0.25, 0.3):
        c = replace(cfg, amount=r)
        assert work.on_disk("prune_report", name, c)
        assert ui.report(name, c).score == ui.result(name, c)[0].score
