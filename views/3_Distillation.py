"""Distillation lab, for any model family: the temperature picture follows the slider live; students are trained on
demand (slimcore.distill) and kept by setting, so a setting trained once comes back at once. What differs between
families is the family's panel (slimui.distill.PANELS)."""
import streamlit as st

from slimui import compare, experiments, lessons, state, urlstate
from slimui import distill as ui

s, teacher = state.current()
state.require_layers(s, "Distillation")
panel = ui.panel(ui.family_of(s))
st.title("Distillation lab")
if not urlstate.projector():   # projector mode: the explanations folded away
    st.caption(ui.caption(s))
cfg = ui.controls(s, teacher)
setting = compare.setting(urlstate.page_spec(), "example", "distill_log", "exp_labels", "exp_class", "exp_share")
compare.toolbar("Distillation", setting, ui.presets(s), teacher, s.name)
example = st.session_state.get("example", 0) if ui.family_of(s).name == "classifier" else None
lessons.banner("Distillation", lambda: (ui.figures(s, cfg, example) or {}) | experiments.figures(s))
key = ui.run_key(s.name, cfg)
panel.picture(s, cfg)

st.subheader("Train a student")
st.markdown(panel.describe(s, cfg))
run = ui.store().get(key)
baseline = ui.store().get(ui.scratch_key(key)) if panel.scratch else None
done = run is not None and (baseline is not None or not panel.scratch)
if st.button("Train", key="train", type="primary", disabled=done):
    ui.train_now(s, key)
    st.rerun()
timing = None
if not done:
    st.info(ui.untrained_note(s, cfg))
else:
    assert run is not None   # done
    ui.curves(s, run, baseline)
    if panel.results:
        panel.results(s, run)
    timing = ui.comparison(s, key, teacher)
with state.friendly_errors():
    compare.panel("Distillation", setting, lambda v: ui.figures(s, ui.setting_config(s, v), example), teacher,
                  s.name)
ui.kept_runs(s)
if panel.grid:
    panel.grid(s, key)
ui.theory(panel)
experiments.section(s, teacher)
if timing is not None:   # last: the timing waits until every figure is drawn
    timing()
