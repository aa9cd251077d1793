"""Lessons as data: every shipped lesson file reads, its links carry its settings, answers come from the measured
figures (ranges and comparisons), and a hostile or broken file gets a clear message and runs nothing."""
from pathlib import Path

import pytest
import yaml

import slimcore
from slimui import lessons as L
from slimui.compare import Figure

TOPICS = ("what-pruning-removes", "per-layer-vs-global", "structured-vs-unstructured", "bits-grid-sqnr",
          "simulated-vs-real-int8", "soft-targets-temperature", "distillation-scarce-labels",
          "sensitivity-mixed-precision")


def shipped() -> dict[str, L.Lesson]:
    found, problems = L.load_all()
    assert problems == []
    return found


def test_at_least_six_lessons_ship_and_every_one_reads():
    found = shipped()
    assert len(found) >= 6
    assert set(TOPICS) <= set(found)
    for lesson in found.values():
        assert lesson.model in slimcore.list_samples()
        assert all(step.lab in L.LABS for step in lesson.steps)


def test_a_step_link_carries_the_model_the_settings_and_the_step():
    lesson = shipped()["per-layer-vs-global"]
    page, query = L.link(lesson, 1)
    assert page == "views/1_Pruning.py"
    assert query == {"model": "digits-cnn", "prune_ratio": "0.8", "prune_scope": "global",
                     "lesson": "per-layer-vs-global", "step": "2"}
    assert L.url(lesson, 1) == ("/Pruning?model=digits-cnn&prune_ratio=0.8&prune_scope=global&"
                                "lesson=per-layer-vs-global&step=2")
    structured = shipped()["structured-vs-unstructured"]
    assert L.link(structured, 1)[1]["prune_structured"] == "1"


def figs(**values) -> dict[str, Figure]:
    return {k: Figure(k, v, "number") for k, v in values.items()}


def test_comparisons_read_the_figures():
    f = figs(thin_bytes=100, dense_bytes=400, score=0.9)
    assert L.holds("thin_bytes < dense_bytes", f) is True
    assert L.holds("dense_bytes <= thin_bytes", f) is False
    assert L.holds("thin_bytes >= 0.25 * dense_bytes", f) is True
    assert L.holds("thin_bytes > 0.3 * dense_bytes", f) is False
    assert L.holds("score >= 0.95", f) is False
    assert L.holds("missing < score", f) is None


def test_the_right_option_is_the_one_the_measurement_falls_in():
    step = L.parse("t", {"title": "T", "summary": "S", "model": "m", "steps": [{
        "lab": "Pruning", "title": "t", "look": "l", "question": "q", "figure": "score", "explain": "e", "options": [
        {"label": "high", "min": 0.9}, {"label": "mid", "min": 0.5, "max": 0.9},
        {"label": "low", "max": 0.5}]}]}).steps[0]
    assert L.right_options(step, figs(score=0.8969)) == [1]
    assert L.right_options(step, figs(score=0.9)) == [0]
    assert L.right_options(step, figs(score=0.1)) == [2]
    assert L.right_options(step, {}) is None   # not measured yet


BASE = {"title": "T", "summary": "S", "model": "digits-cnn",
        "steps": [{"lab": "Pruning", "title": "t", "look": "l", "question": "q", "figure": "score",
                   "explain": "e", "number": {"min": 0, "max": 100}}]}


@pytest.mark.parametrize("change,message", [
    (lambda d: d.update(steps=[]), "1 to 20 steps"),
    (lambda d: d.update(extra=1), "unknown field"),
    (lambda d: d["steps"][0].update(lab="Kitchen"), "'lab' must be one of"),
    (lambda d: d["steps"][0].update(options=[{"label": "x", "min": 1}]), "either options or a number"),
    (lambda d: d["steps"][0].update(number={"min": 5, "max": 1}), "min must be below max"),
    (lambda d: d["steps"][0].update(figure="__class__.__mro__"), "figure's key"),
    (lambda d: d["steps"][0].update(settings={"prune_ratio": {"nested": 1}}), "must be a text, a number"),
    (lambda d: (d["steps"][0].pop("number"), d["steps"][0].update(options=[
        {"label": "x", "when": "__import__('os').system('id') < 1"}])), "'when' must compare"),
    (lambda d: d.update(title=""), "'title' must be a non-empty text"),
    (lambda d: d["steps"][0].pop("explain"), "'explain' must be a non-empty text"),
    (lambda d: d["steps"][0].update(figure="accuracy"), "the Pruning lab has no figure accuracy"),
    (lambda d: (d["steps"][0].pop("number"), d["steps"][0].update(options=[
        {"label": "x", "when": "thin_bytes < weights"}])), "has no figure weights"),
    (lambda d: (d["steps"][0].pop("number"), d["steps"][0].update(options=[{"label": "always"}])),
     "needs min, max or when"),
    (lambda d: d["steps"][0].update(number={"min": 0, "max": 1, "step": 0}), "step and scale must be above 0"),
    (lambda d: d["steps"][0].update(number={"min": 10 ** 400, "max": 1}), "must be a number"),
    (lambda d: d.update(order=10 ** 400), "order must be a number"),
])
def test_a_broken_lesson_is_refused_with_what_is_wrong(change, message):
    data = yaml.safe_load(yaml.safe_dump(BASE))
    change(data)
    with pytest.raises(L.LessonError, match=message):
        L.parse("broken", data)


def test_a_file_that_is_not_yaml_or_asks_for_python_objects_is_refused_without_running_it(tmp_path: Path):
    (tmp_path / "evil.yaml").write_text("!!python/object/apply:os.system ['touch " + str(tmp_path / "ran") + "']\n")
    (tmp_path / "Bad Name.yaml").write_text(yaml.safe_dump(BASE))
    (tmp_path / "big.yaml").write_text("x" * (L.MAX_BYTES + 1))
    (tmp_path / "good.yaml").write_text(yaml.safe_dump(BASE))
    for name, message in (("evil.yaml", "not valid YAML"), ("Bad Name.yaml", "lower case"), ("big.yaml", "larger")):
        with pytest.raises(L.LessonError, match=message):
            L.read(tmp_path / name)
    assert not (tmp_path / "ran").exists()
    assert L.read(tmp_path / "good.yaml").title == "T"


def test_a_teachers_folder_is_read_beside_the_shipped_one_and_its_broken_files_listed(tmp_path, monkeypatch):
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(BASE | {"title": "Mine"}))
    (tmp_path / "broken.yaml").write_text("title: [")
    (tmp_path / "digits.yaml").write_text("order: " + "9" * 5000 + "\n")   # more digits than Python reads
    monkeypatch.setenv(L.ENV, str(tmp_path))
    found, problems = L.load_all()
    assert found["mine"].title == "Mine" and set(TOPICS) <= set(found)
    assert sorted(p.split(":")[0] for p in problems) == ["broken.yaml", "digits.yaml"]


def test_a_lessons_text_keeps_emphasis_but_no_link_image_or_directive():
    from slimui.safe import prose

    text = prose("**bold** ![x](http://evil.example/x.png) [click](http://evil.example) :red-background[alarm] "
                 "www.evil.example <img src=x>")
    assert "**bold**" in text and "](" not in text and "![" not in text
    assert "\\:red-background[" in text and " :red" not in text   # escaped: shown as typed, not a banner
    assert "<img" not in text and "www.evil" not in text
