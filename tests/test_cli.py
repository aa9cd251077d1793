"""The command line, run as a user runs it (`python -m slimcore ...` in a subprocess from the repository root): its
figures are the labs' figures, its sweep CSV is the Trade-offs page's table byte for byte, and bad arguments give one
line on stderr and exit code 2."""
import io
import json
import subprocess
import sys

import pandas as pd
import pytest

import slimcore
from slimcore import PruneConfig, QuantConfig, cli
from slimcore import recipe as R
from slimcore.recipe import Int8Config, Recipe
from tests.conftest import ROOT


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slimcore", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_help_documents_both_commands():
    out = run("--help")
    assert out.returncode == 0 and out.stderr == ""
    assert "apply" in out.stdout and "sweep" in out.stdout and "digits-cnn" in out.stdout
    for command, flags in (("apply", ("--recipe", "--model", "--out", "--data")),
                           ("sweep", ("--model", "--out", "--methods", "--no-structured", "--per-channel"))):
        sub = run(command, "--help")
        assert sub.returncode == 0 and all(f in sub.stdout for f in flags)


@pytest.fixture(scope="module")
def recipes(tmp_path_factory):
    d = tmp_path_factory.mktemp("recipes")
    R.dump(Recipe("digits-cnn", prune=PruneConfig(0.5, "taylor")), d / "taylor.yaml")
    R.dump(Recipe("digits-cnn", prune=PruneConfig(0.5, structured=True)), d / "channels.json")
    R.dump(Recipe("digits-cnn", quant=QuantConfig(4, per_channel=True)), d / "q4.yml")
    R.dump(Recipe("digits-cnn", int8=Int8Config()), d / "int8.yaml")
    (d / "bad.yaml").write_text("version: 1\nmodel: digits-cnn\nprune: {amount: 1.5}\n")
    return d


BAD = [  # arguments -> a piece of the one-line message
    ((), "choose a command: apply or sweep"),
    (("frob",), "invalid choice: 'frob'"),
    (("sweep", "--out", "t.csv"), "the following arguments are required: --model"),
    (("sweep", "--model", "resnet-9000", "--out", "t.csv"), "unknown model 'resnet-9000': give a sample model"),
    (("sweep", "--model", "digits-cnn", "--data", "x.npz", "--out", "t.csv"), "--data is for a model file"),
    (("sweep", "--model", "digits-cnn", "--out", "t.csv", "--methods", "l7"), "invalid choice: 'l7'"),
    (("sweep", "--model", "digits-cnn", "--out", "t.csv", "--ratios", "0,half"), "expected numbers separated"),
    (("sweep", "--model", "digits-cnn", "--out", "t.csv", "--ratios", "0,1.5"), "prune ratios must be in [0, 1)"),
    (("sweep", "--model", "digits-cnn", "--out", "t.csv", "--bits", "32,0"), "bit widths must be 1..16"),
    (("sweep", "--model", "digits-cnn", "--out", "no/such/dir/t.csv"), "the folder no/such/dir does not exist"),
    (("sweep", "--model", "digits-cnn", "--out", "t.csv", "--threads", "0"), "--threads must be at least 1"),
    (("apply",), "the following arguments are required: --recipe"),
    (("apply", "--recipe", "{d}/missing.yaml"), "missing.yaml: no such recipe file"),
    (("apply", "--recipe", "{d}/bad.yaml"), "bad.yaml: prune.amount: prune ratio must be in [0, 1), got 1.5"),
    (("apply", "--recipe", "{d}/taylor.yaml", "--data", "x.npz"), "--data is for a model file"),
    (("apply", "--recipe", "{d}/taylor.yaml", "--formats", "tflite"), "--formats: unknown format 'tflite'"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[" ".join(a) or "nothing" for a, _ in BAD])
def test_bad_arguments_give_one_line_and_exit_code_2(args, message, recipes, capsys):
    """Run in this process (cli.main is what `python -m slimcore` runs): a subprocess each costs 2 s of imports."""
    code = cli.main([a.format(d=recipes) for a in args])
    out = capsys.readouterr()
    assert code == 2, out.err
    assert out.out == ""
    assert out.err.startswith("python -m slimcore: error: ") and message in out.err, out.err
    assert out.err.count("\n") == 1


@pytest.mark.parametrize("index", [0, 3, 13])
def test_bad_arguments_from_the_shell(index, recipes):
    args, message = BAD[index]
    out = run(*(a.format(d=recipes) for a in args))
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("python -m slimcore: error: ") and message in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_a_failure_inside_is_one_line_and_exit_code_1(recipes, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("size mismatch for conv1.weight\n\tmore detail")

    monkeypatch.setattr(R, "apply", broken)
    assert cli.main(["apply", "--recipe", str(recipes / "taylor.yaml")]) == 1
    err = capsys.readouterr().err
    assert err == ("python -m slimcore: error: RuntimeError: size mismatch for conv1.weight (set SLIMLAB_DEBUG=1 for "
                   "the traceback)\n")
    monkeypatch.setenv("SLIMLAB_DEBUG", "1")
    with pytest.raises(RuntimeError, match="size mismatch"):
        cli.main(["apply", "--recipe", str(recipes / "taylor.yaml")])


def test_resolve_model_takes_sample_names_and_model_files(tmp_path):
    assert cli.resolve_model("digits-mlp").name == "digits-mlp"
    with pytest.raises(cli.UsageError, match="unknown model 'x.pt'"):
        cli.resolve_model("x.pt")
    with pytest.raises(cli.UsageError, match="--data is for a model file"):
        cli.resolve_model("digits-mlp", "digits.npz")
    with pytest.raises(cli.UsageError, match="uploaded to the dashboard"):
        cli.resolve_model("upload-0123456789abcdef")
    from_file = cli.resolve_model(str(ROOT / "sample_models" / "digits-cnn.pt"))  # a state dict file, as uploaded
    assert from_file.card["sample_architecture"] == "digits-cnn" and from_file.data.name == "digits"


@pytest.mark.slow
def test_apply_and_sweep_on_a_model_file_with_data(tmp_path):
    import numpy as np
    import torch

    s = slimcore.load_sample("mnist1d-mlp")
    model, data = tmp_path / "my model.pt", tmp_path / "d.npz"
    torch.jit.save(torch.jit.script(s.model), str(model))
    np.savez(data, x=s.test.x.numpy(), y=s.test.y.numpy())
    up = slimcore.upload.load_files(str(model), str(data))
    want = slimcore.pruning.evaluate(up.model, PruneConfig(0.5), up.test)[0]
    recipe = tmp_path / "r.yaml"
    R.dump(Recipe(up.name, prune=PruneConfig(0.5)), recipe)
    out = run("apply", "--recipe", str(recipe), "--model", str(model), "--data", str(data), "--no-latency", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["figures"]["accuracy"] == want.score.value
    out = run("sweep", "--model", str(model), "--data", str(data), "--out", "-", "--methods", "l1", "--ratios", "0,0.5",
              "--bits", "32,8")
    assert out.returncode == 0 and len(pd.read_csv(io.StringIO(out.stdout))) > 0, out.stderr
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model at all")
    out = run("apply", "--recipe", str(recipe), "--model", str(bad), "--no-latency")
    assert out.returncode == 1 and "not a PyTorch model file" in out.stderr and "Traceback" not in out.stderr


# apply -------------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_apply_prints_the_pruning_labs_figures(recipes):
    from slimui import pruning as page

    for file, cfg in (("taylor.yaml", PruneConfig(0.5, "taylor")),
                      ("channels.json", PruneConfig(0.5, structured=True))):
        report, _, _ = page.result("digits-cnn", cfg)       # what the Pruning page shows for this setting
        out = run("apply", "--recipe", str(recipes / file), "--no-latency")
        assert out.returncode == 0 and out.stderr == "", out.stderr
        lines = {line[:12].strip(): line[12:] for line in out.stdout.splitlines()}
        assert lines["accuracy"].startswith(f"{report.score.value:.2%} measured on 359 test examples")
        size = report.thin.size_bytes if cfg.structured else report.size_bytes
        assert lines["size"].startswith(f"{size:,} B measured")
        figures = json.loads(run("apply", "--recipe", str(recipes / file), "--no-latency", "--json").stdout)["figures"]
        assert figures["accuracy"] == report.score.value and figures["size_bytes"] == size
        if not cfg.structured:
            assert figures["modelled_bytes"] == report.sparse.bytes


@pytest.mark.slow
def test_apply_prints_the_quantization_labs_figures(recipes):
    from slimui import quant as page

    cfg = QuantConfig(4, per_channel=True)
    shown = page.variant("digits-cnn", page.key(cfg))
    figures = json.loads(run("apply", "--recipe", str(recipes / "q4.yml"), "--no-latency", "--json").stdout)["figures"]
    assert figures["accuracy"] == shown["score"].value and figures["modelled_bytes"] == shown["size"].bytes
    real = page.int8_figures("digits-cnn", "int8 (torch.ao)")
    figures = json.loads(run("apply", "--recipe", str(recipes / "int8.yaml"), "--no-latency",
                             "--json").stdout)["figures"]
    assert (figures["accuracy"], figures["size_bytes"]) == (real["score"].value, real["size_bytes"])


@pytest.mark.slow
def test_apply_times_and_exports(recipes, tmp_path):
    out = run("apply", "--recipe", str(recipes / "channels.json"), "--out", str(tmp_path / "x"), "--threads", "1")
    assert out.returncode == 0 and out.stderr == "", out.stderr
    latency = next(line for line in out.stdout.splitlines() if line.startswith("latency"))
    assert "median at batch 1" in latency and "at batch 256, 1 thread(s), measured" in latency
    written = {p.name: p.stat().st_size for p in (tmp_path / "x").iterdir()}
    assert set(written) == {"state_dict.pt", "shapes.json", "model.torchscript.pt", "model.onnx", "recipe.yaml",
                            "figures.json"}
    for name, size in written.items():
        assert f"{name}" in out.stdout and f"{size:,} B" in out.stdout
    assert R.load(tmp_path / "x" / "recipe.yaml") == R.load(recipes / "channels.json")
    saved = json.loads((tmp_path / "x" / "figures.json").read_text())["figures"]
    assert saved["latency_b256"]["threads"] == 1
    assert f"{saved['accuracy']:.2%} measured" in out.stdout


def test_apply_of_an_exported_recipe_gives_the_same_figures(recipes, tmp_path):
    first = run("apply", "--recipe", str(recipes / "taylor.yaml"), "--out", str(tmp_path), "--no-latency",
                "--formats", "state_dict", "--json")
    again = run("apply", "--recipe", str(tmp_path / "recipe.yaml"), "--no-latency", "--json")
    a, b = json.loads(first.stdout)["figures"], json.loads(again.stdout)["figures"]
    assert (a["accuracy"], a["size_bytes"], a["modelled_bytes"]) == (b["accuracy"], b["size_bytes"],
                                                                     b["modelled_bytes"])


# sweep -------------------------------------------------------------------------------------------------------------

GRIDS = {  # CLI options -> the page's sweep arguments (methods, structured, scope, per channel)
    "page defaults": ((), (("l1",), (False, True), "layer", False)),
    "taylor+random, global, per channel, no channels": (
        ("--methods", "taylor", "random", "--scope", "global", "--per-channel", "--no-structured"),
        (("taylor", "random"), (False,), "global", True)),
}


@pytest.mark.slow
@pytest.mark.parametrize("grid", list(GRIDS))
def test_sweep_csv_is_the_trade_offs_pages_table(grid, tmp_path):
    from slimui import tradeoffs as page

    options, (methods, structured, scope, per_channel) = GRIDS[grid]
    name = "digits-cnn" if grid == "page defaults" else "mnist1d-mlp"
    out = run("sweep", "--model", name, "--out", str(tmp_path / "t.csv"), *options)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""   # no progress bar when stderr is not a terminal
    frame = page.sweep(name, methods, structured, scope, per_channel)   # what the page draws and downloads
    assert (tmp_path / "t.csv").read_bytes() == page.csv(frame)
    table = pd.read_csv(tmp_path / "t.csv")
    assert len(table) == len(frame) and f"{len(frame)} rows" in out.stdout
    assert set(table.method) == set(methods) and set(table.scope) == {scope}


@pytest.mark.slow
def test_sweep_to_standard_output_with_latency():
    out = run("sweep", "--model", "mnist1d-cnn", "--out", "-", "--ratios", "0,0.5", "--bits", "32,4", "--latency")
    assert out.returncode == 0, out.stderr
    table = pd.read_csv(io.StringIO(out.stdout))
    assert len(table) == 2 + 2 * 2   # unpruned once; 0.5 unstructured and channel-pruned; each at fp32 and 4-bit
    fp32 = table[table.bits == 32]
    assert fp32.latency_ms.notna().all() and fp32.latency_label.str.startswith("measured").all()
    assert table[table.bits == 4].latency_ms.isna().all()
    assert "6 rows" in out.stderr and out.stderr.count("\n") == 1


def test_progress_bar_only_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    quiet, tty = io.StringIO(), Terminal()
    for stream in (quiet, tty):
        bar = cli.Progress("sweep", stream, width=10)
        for i in range(1, 5):
            bar(i, 4)
    assert quiet.getvalue() == ""
    assert "\rsweep [##########] 4/4" in tty.getvalue() and tty.getvalue().endswith("\n")


# the sentence encoder (minilm): the same commands, the family's score ------------------------------------------------

MINILM_BAD = [  # recipe text -> a piece of the one-line message (exit code 2, no traceback)
    ("prune: {amount: 0.5, structured: true, unit: neurons, norm: 2}",
     "prune.unit: 'neurons' is not a unit of sentence encoders; choose from heads, ffn"),
    ("prune: {amount: 0.5, structured: true, unit: channels, norm: 2}", "prune.unit: 'channels' is not a unit"),
    ("int8: {kind: static}", "int8: static int8 is not available for sentence encoders"),
    ("prune: {amount: 0.5, structured: true, unit: heads, norm: 2, skip: [encoder.layer.0.output.dense]}",
     "skipped or overridden Linear layers when removing heads or FFN neurons is not available"),
]


@pytest.mark.slow
@pytest.mark.parametrize("body, message", MINILM_BAD, ids=[m[:24] for _, m in MINILM_BAD])
def test_hostile_minilm_recipes_give_one_line_and_exit_code_2(body, message, tmp_path, capsys):
    (tmp_path / "r.yaml").write_text(f"version: 1\nmodel: minilm\n{body}\n")
    code = cli.main(["apply", "--recipe", str(tmp_path / "r.yaml"), "--no-latency"])
    out = capsys.readouterr()
    assert code == 2 and out.out == "", out.err
    assert out.err.startswith("python -m slimcore: error: ") and message in out.err, out.err
    assert out.err.count("\n") == 1 and "Traceback" not in out.err


@pytest.mark.slow
def test_sweep_on_minilm_is_the_family_generic_grid(tmp_path, capsys):
    from slimcore import tradeoffs

    args = ["--ratios", "0,0.5", "--bits", "32,8", "--no-structured"]
    assert cli.main(["sweep", "--model", "minilm", "--out", str(tmp_path / "t.csv"), *args]) == 0
    out = capsys.readouterr()
    table = pd.read_csv(tmp_path / "t.csv")
    s = slimcore.load_sample("minilm")
    assert len(table) == 2 * 2 and "4 rows" in out.out   # unpruned once, 0.5; each at fp32 and 8-bit
    assert f"mean cosine to the original on {len(s.data.quick_set)} examples" in out.out, out.out
    frame = tradeoffs.grid(s, tradeoffs.GridConfig(("unstructured",), ("l1",), (0.0, 0.5), ("fp32", "8-bit")))
    assert (tmp_path / "t.csv").read_bytes() == tradeoffs.csv(frame)   # the same function, the same bytes
    assert cli.main(["sweep", "--model", "minilm", "--out", str(tmp_path / "u.csv"), "--latency"]) == 2
    err = capsys.readouterr().err
    assert "timing a whole grid is not available for sentence encoders" in err and err.count("\n") == 1
    assert not (tmp_path / "u.csv").exists()


@pytest.mark.slow
def test_apply_on_minilm_prints_the_encoders_score_and_exports(tmp_path, capsys):
    """Heads pruned by a recipe: the score is the family's (mean cosine to the original, the figure slimcore.prune +
    slimcore.score give), and the export holds every format with the heads per layer in shapes.json."""
    recipe = Recipe("minilm", prune=PruneConfig(0.25, structured=True, unit="heads", norm=2))
    R.dump(recipe, tmp_path / "heads.yaml")
    assert cli.main(["apply", "--recipe", str(tmp_path / "heads.yaml"), "--out", str(tmp_path / "x"),
                     "--no-latency", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    s = slimcore.load_sample("minilm")
    pruned = slimcore.prune(s, recipe.prune)
    want = slimcore.score(s, pruned)
    f = got["figures"]
    assert (f["metric"], f["kind"], f["score"]) == (want.metric.name, "head-pruned", want.value)
    assert f["base_score"] == pytest.approx(1.0, abs=1e-6)   # the original against itself
    assert "accuracy" not in f and f["detail"]["sentences"] == want.examples
    assert set(got["files"]) == {"state_dict.pt", "shapes.json", "model.torchscript.pt", "model.onnx", "recipe.yaml",
                                 "figures.json"} and got["not_available"] == {}
    heads = [g.count for g in slimcore.families.get("encoder").units(pruned, "heads")]
    units = json.loads((tmp_path / "x" / "shapes.json").read_text())["units"]
    assert units == {"heads": heads} and sum(heads) < sum(s.model.shape()["heads"])
    assert R.load(tmp_path / "x" / "recipe.yaml") == recipe
    saved = json.loads((tmp_path / "x" / "figures.json").read_text())
    assert all(v["ok"] for v in saved["files"].values()), saved["files"]
    assert "lowest cosine" in saved["files"]["model.onnx"]["check"]


@pytest.mark.slow   # two ResNet-18 uploads read in the sandbox and swept (about 20 s on 2 cores)
def test_a_named_architecture_and_its_program_sweep_to_the_same_table(tmp_path):
    import numpy as np
    import torch
    from safetensors.torch import save_file

    from slimcore import architectures as A
    from slimcore.data import digit_images

    model = A.build("resnet18", 10, 3, seed=0)
    x, y = digit_images(32, 3)
    np.savez(tmp_path / "images.npz", x=x, y=y)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "weights.safetensors"))
    torch.export.save(torch.export.export(model, (torch.as_tensor(x[:2]),),
                                          dynamic_shapes=({0: torch.export.Dim("batch")},)), str(tmp_path / "m.pt2"))
    common = ["--data", str(tmp_path / "images.npz"), "--ratios", "0,0.5", "--bits", "32,4"]
    named = run("sweep", "--model", str(tmp_path / "weights.safetensors"), "--architecture", "resnet18", *common,
                "--out", str(tmp_path / "named.csv"))
    program = run("sweep", "--model", str(tmp_path / "m.pt2"), *common, "--out", str(tmp_path / "program.csv"))
    assert named.returncode == program.returncode == 0, (named.stderr, program.stderr)
    a, b = pd.read_csv(tmp_path / "named.csv"), pd.read_csv(tmp_path / "program.csv")
    assert len(a) == 6 and a.drop(columns=["latency_ms"]).equals(b.drop(columns=["latency_ms"]))
    wrong = run("sweep", "--model", str(tmp_path / "weights.safetensors"), "--architecture", "resnet50", *common,
                "--out", str(tmp_path / "x.csv"))
    assert wrong.returncode == 1 and "do not fit resnet50" in wrong.stderr and "Traceback" not in wrong.stderr


# experiments: the Distillation page's experiments table -----------------------------------------------------------

def test_experiments_prints_the_table_of_the_experiment_functions(capsys):
    """In this process (cli.main is what `python -m slimcore` runs), on a tiny setting: the rows are those of
    slimcore.experiments, which the page draws too; --json carries the same figures."""
    from dataclasses import replace

    from slimcore import experiments as E

    args = ["experiments", "--model", "digits-cnn", "--only", "dark", "--seeds", "2", "--epochs", "1",
            "--held-out", "7"]
    assert cli.main(args) == 0
    out = capsys.readouterr()
    expected = E.dark_knowledge(slimcore.load_sample("digits-cnn"), E.DarkConfig(7, 2, replace(E.TRAINING, epochs=1)))
    assert E.text_table(E.rows(expected)) in out.out and "mean ± sample sd over 2 seeds" in out.out
    assert "seconds: dark" in out.out
    assert cli.main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["rows"] == E.rows(expected) and doc["training"]["epochs"] == 1
    dark = doc["experiments"]["dark"]
    assert dark["recall_distilled"]["values"] == list(expected.recall_distilled.values)
    assert any("Hinton" in r["source"] for r in doc["published"]["dark"])


@pytest.mark.parametrize("args, message", [
    (("--seeds", "1"), "--seeds must be at least 2"),
    (("--held-out", "10"), "--held-out must be a class of the model, 0..9"),
    (("--labels", "0,5"), "percentages in (0, 100], got 0"),
    (("--share", "150"), "percentages in (0, 100], got 150"),
    (("--only", "frob"), "invalid choice: 'frob'"),
    (("--epochs", "0"), "--epochs must be at least 1"),
])
def test_bad_experiment_arguments_give_one_line_and_exit_code_2(args, message, capsys):
    assert cli.main(["experiments", "--model", "digits-cnn", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.slow   # a subprocess: imports, two tiny experiments on MNIST-1D (about 10 s on 2 cores)
def test_experiments_from_the_shell():
    out = run("experiments", "--model", "mnist1d-cnn", "--only", "weak-strong", "scarce", "--labels", "5",
              "--seeds", "2", "--epochs", "1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("mnist1d-cnn: students 0.5 of the teacher's width, 55 Adam steps each")
    assert sum("weak vs strong" in line for line in lines) == 4 and sum("scarce labels" in line for line in lines) == 3
    assert lines[-1].startswith("seconds: weak-strong") and "scarce" in lines[-1]   # in the order asked for
