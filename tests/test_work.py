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
@pytest.mark.usefixtures("fresh_results")   # nothing found prepared by another test
def test_an_encoders_slider_positions_are_prepared_as_the_page_computes_them():
    from slimcore import text_prune as TP
    from slimui import pruning as ui

    name = "minilm"
    cfg = replace(TP.config(0.3, "heads"), method="l1", scope="layer")
    w = work.worker()
    w.inline = False                             # as served: in the background
    try:
        ui.prefetch(name, cfg, (0.25, 0.3, 0.35))   # the other positions (the page computes its own)
        for r in (0.25, 0.35):
            assert w.get(f"prune_prefetch|{name}|{replace(cfg, amount=r)}").wait(300)
    finally:
        w.inline = True
    assert not work.on_disk("prune_report", name, cfg)
    for r in (0.25, 0.35):
        c = replace(cfg, amount=r)
        assert work.on_disk("prune_report", name, c)
        assert ui.report(name, c).score == ui.result(name, c)[0].score


@pytest.mark.usefixtures("fresh_results")
def test_a_trained_student_is_kept_on_disk_and_comes_back_the_same():
    import torch

    from slimcore import distillation as D
    from slimui import distill as ui

    key = ui.run_key("digits-mlp", D.DistillConfig(temperature=4.0, alpha=0.5, epochs=1, seed=0))
    run = ui.train(key)
    assert work.on_disk("distill_run", "digits-mlp", key.cfg)
    again = ui.RunStore(load=ui.store().load).get(key)   # a new process's store: from disk, not from memory
    assert again is not None and again is not run
    x = ui.cache.sample("digits-mlp").test.x[:64]
    assert torch.equal(again.student(x), run.student(x))
    assert again.test == run.test and again.history == run.history and not any(
        p.requires_grad for p in again.student.parameters())
