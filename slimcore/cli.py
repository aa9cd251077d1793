"""The command line, `python -m slimcore`: `apply` rebuilds a compressed model from a recipe, prints its figures and
exports it; `sweep` writes the Trade-offs table as CSV; `experiments` runs the Distillation page's experiments (scarce
labels, dark knowledge, weak vs strong) and prints their table. The numbers are the dashboard's: the commands call the
slimcore functions the pages call. Bad arguments give one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn, TextIO

import torch

from . import executor, tradeoffs
from . import experiments as E
from . import recipe as R
from .architectures import ARCHITECTURES
from .families import family_of
from .metrics import Latency
from .pruning import METHODS, SCOPES
from .sweep import SweepError
from .upload import UploadError, is_upload, load_files
from .zoo import SampleError, list_samples, load_sample

PROG = "python -m slimcore"
FORMATS = ("state_dict", "torchscript", "onnx")


class UsageError(ValueError):
    """A command line that cannot run as given, with a message fit for one line."""


def resolve_model(spec: str, data: str | None = None, architecture: str | None = None) -> Any:
    """The model a --model argument names, with its data: a sample model's name (slimcore.list_samples(): classifiers
    and the sentence encoder), which brings its own data, or the path of a model file (read as the dashboard reads an
    upload) with an optional --data .npz. Raises UploadError (exit code 1) for a file that cannot be used."""
    if spec in list_samples():
        if architecture is not None:
            raise UsageError(f"--architecture is for a weights file; the sample model {spec!r} is its own")
        if data is not None:
            raise UsageError(f"--data is for a model file; the sample model {spec!r} brings its own data (leave "
                             "--data out)")
        return load_sample(spec)
    if Path(spec).is_file():
        return load_files(spec, data, architecture=architecture)
    if is_upload(spec):
        raise UsageError(f"{spec!r} names a model uploaded to the dashboard; give the path of its file instead")
    raise UsageError(f"unknown model {spec!r}: give a sample model ({', '.join(list_samples())}) or the path of a "
                     "model file (TorchScript, .pt2, or a state dict)")


# Output --------------------------------------------------------------------------------------------------------------

class Progress:
    """A one-line progress bar on a terminal (stderr); silent when the stream is not a terminal (a pipe, a log)."""

    def __init__(self, what: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.what, self.stream, self.width = what, stream or sys.stderr, width
        self.on = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        if not self.on:
            return
        full = round(self.width * done / max(total, 1))
        self.stream.write(f"\r{self.what} [{'#' * full}{'.' * (self.width - full)}] {done}/{total} "
                          f"{time.perf_counter() - self.t0:.1f} s")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _ms(lat: Latency | None) -> str:
    return f"{lat.median_ms:.3f} ms" if lat is not None else "not timed"


def figure_lines(f: R.Figures) -> list[str]:
    """The figures of an applied recipe, one labelled line each (the score as the family's metric writes it)."""
    fmt = f.metric.format
    lines = [f"model       {f.kind}: {R.KINDS[f.kind]}",
             f"{f.metric.short:<11s} {fmt(f.score)} measured on {f.examples:,} test examples (original "
             f"{fmt(f.base_score)}; {f.metric.name})",
             f"size        {f.size_bytes:,} B measured ({f.size_source}; original {f.base_size_bytes:,} B, torch.save)"]
    if f.modelled_bytes is not None:
        lines.append(f"            {f.modelled_bytes:,.0f} B modelled ({f.modelled_detail})")
    lines.append(f"parameters  {f.params:,} ({f.nonzeros:,} non-zero)")
    big = f.latency_batch   # None when not timed (no latencies)
    if big is not None:
        lines.append(f"latency     {_ms(f.latency_b1)} median at batch 1, {_ms(big)} at batch {big.batch}, "
                     f"{big.threads} thread(s), measured (original {_ms(f.base_latency_b1)} and "
                     f"{_ms(f.base_latency_batch)})" + (" — noisy" if big.noisy else ""))
    lines += [f"note        {n}" for n in f.notes]
    return lines


# Commands ------------------------------------------------------------------------------------------------------------

def cmd_apply(args: argparse.Namespace) -> int:
    recipe = R.load(args.recipe)
    spec = args.model or recipe.model
    sample = resolve_model(spec, args.data, args.architecture)
    if spec != recipe.model:
        print(f"note: the recipe was written for {recipe.model}; applying it to {spec}", file=sys.stderr)
        recipe = replace(recipe, model=spec)
    formats = tuple(args.formats.split(","))
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise UsageError(f"--formats: unknown format {bad[0]!r}; choose from {','.join(FORMATS)}")
    applied = R.apply(sample, recipe, timing=not args.no_latency)
    exported = None
    if args.out is not None:
        from .export import export  # torch.onnx is imported only when exporting
        exported = export(applied, sample, args.out, formats)
    if args.json:
        out = {"recipe": recipe.to_dict(), "figures": applied.figures.to_dict()}
        if exported is not None:
            out["files"] = {a.name: a.bytes for a in exported.files}
            out["not_available"] = exported.unavailable
        print(json.dumps(out, indent=2, default=str))
        return 0
    print(f"recipe      {recipe.describe()}")
    print("\n".join(figure_lines(applied.figures)))
    if exported is not None:
        print(f"exported to {exported.directory} ({exported.total_bytes:,} B):")
        print("\n".join("  " + line for line in exported.lines()))
    return 0


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None


def cmd_sweep(args: argparse.Namespace) -> int:
    if args.ray is not None:
        try:
            executor.check_address(args.ray)
        except executor.ExecutorError as e:
            raise UsageError(f"--ray: {e}") from None
    sample = resolve_model(args.model, args.data, args.architecture)
    fam = family_of(sample)
    out = None if args.out == "-" else Path(args.out)
    if out is not None and not out.parent.is_dir():
        raise UsageError(f"--out: the folder {out.parent} does not exist")
    kinds = ("unstructured", *fam.unit_kinds) if args.structured else ("unstructured",)
    precisions = tuple(tradeoffs.precision(b) for b in args.bits)
    if args.int8:
        precisions += tuple(tradeoffs.REAL.get(fam.name, {}))
    cfg = tradeoffs.GridConfig(kinds, tuple(dict.fromkeys(args.methods)), args.ratios, precisions, args.scope,
                               args.per_channel)
    cfg.check(fam)   # a setting the family does not have: one line, before any work
    if args.latency:
        tradeoffs.check_timing(fam)
    runner = executor.resolve(args.ray)
    runner.warm()   # a cluster's workers start (seconds: they import torch) while the scores are computed here
    todo = cfg.pieces()
    t0 = time.perf_counter()
    where = "" if isinstance(runner, executor.InProcess) else f" on {runner.name}, {runner.workers} worker CPUs"
    frame = tradeoffs.grid(sample, cfg, executor=runner, on_progress=Progress(
        f"sweep {args.model}: {len(todo)} prune settings x {len(precisions)} precisions{where}"))
    if args.latency:
        frame = tradeoffs.with_latency(frame, tradeoffs.latencies(
            sample, frame, {m: tradeoffs.scores(sample, m) for m in cfg.methods}))
    seconds = time.perf_counter() - t0
    data = tradeoffs.csv(frame)
    if out is None:
        sys.stdout.write(data.decode())
    else:
        out.write_bytes(data)
    report = sys.stderr if out is None else sys.stdout
    print(f"{len(frame)} rows ({len(todo)} prune settings x {len(precisions)} precisions; "
          f"{getattr(frame.attrs.get('metric'), 'name', fam.metric.name)} on {frame.attrs.get('examples') or '?'} "
          "examples) in "
          f"{seconds:.1f} s{where}" + (f" -> {out}" if out is not None else ""), file=report)
    return 0


EXPERIMENTS = ("scarce", "dark", "weak-strong")


def cmd_experiments(args: argparse.Namespace) -> int:
    sample = resolve_model(args.model, args.data)
    if args.seeds < 2:
        raise UsageError(f"--seeds must be at least 2 (a mean ± sd needs two), got {args.seeds}")
    if args.epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {args.epochs}")
    bad = [p for p in (*args.labels, args.share) if not 0 < p <= 100]
    if bad:
        raise UsageError(f"shares of labels and data are percentages in (0, 100], got {bad[0]:g}")
    train = dataclasses.replace(E.TRAINING, epochs=args.epochs)
    only = tuple(dict.fromkeys(args.only or EXPERIMENTS))
    if "dark" in only and not 0 <= args.held_out < E.classes(sample):   # before any other experiment runs
        raise UsageError(f"--held-out must be a class of the model, 0..{E.classes(sample) - 1}; got {args.held_out}")
    fractions = tuple(p / 100 for p in dict.fromkeys(args.labels))
    runs: dict[str, tuple[str, int, Callable[[Progress], object]]] = {  # experiment -> (what, students, how)
        "scarce": (f"scarce labels: {len(fractions)} shares", 2 * args.seeds * len(fractions), lambda progress:
                   E.scarce_curve(sample, E.ScarceConfig(seeds=args.seeds, train=train), fractions, progress)),
        "dark": (f"dark knowledge, no {args.held_out}", 2 * args.seeds, lambda progress:
                 E.dark_knowledge(sample, E.DarkConfig(args.held_out, args.seeds, train), progress)),
        "weak-strong": (f"weak vs strong, {args.share:g} % of the data", len(E.ARMS) * args.seeds, lambda progress:
                        E.weak_strong(sample, E.WeakStrongConfig(args.share / 100, args.seeds, train), progress)),
    }
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name in only:
        what, students, run = runs[name]
        t0 = time.perf_counter()
        results[name] = run(Progress(f"{what}: {students} students"))
        seconds[name] = time.perf_counter() - t0
    flat = [r for res in results.values() for r in (res if isinstance(res, tuple) else (res,))]
    table = [row for r in flat for row in E.rows(r)]
    if args.json:
        print(json.dumps({"model": args.model, "training": dataclasses.asdict(train), "seeds": args.seeds,
                          "experiments": {k: [dataclasses.asdict(r) for r in v] if isinstance(v, tuple)
                                          else dataclasses.asdict(v) for k, v in results.items()},
                          "rows": table, "seconds": seconds,
                          "published": {k: [dataclasses.asdict(r) for r in refs] for k, refs in E.PUBLISHED.items()}},
                         indent=2))
        return 0
    steps = E.budget(len(family_of(sample).split(sample, "train")), train)
    print(f"{args.model}: students {train.student:g} of the teacher's width, {steps} Adam steps each (lr {train.lr:g}, "
          f"batch {train.batch_size}), T = {train.temperature:g}, alpha {train.alpha:g}; mean ± sample sd over "
          f"{args.seeds} seeds, on the test split")
    print(E.text_table(table))
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))
    return 0


# The parser ----------------------------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument raises UsageError (one line, exit 2) instead of printing the usage block."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def parser() -> argparse.ArgumentParser:
    samples = ", ".join(list_samples())
    p = _Parser(prog=PROG, description="SlimLab from the command line: the dashboard's numbers, computed by the same "
                "slimcore functions.", epilog=f"Sample models: {samples}. See `{PROG} COMMAND --help`.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    a = sub.add_parser("apply", help="build the model a recipe describes, print its figures, export it",
                       description="Apply a recipe (YAML or JSON: prune, then fake-quantize or real int8) to a model, "
                       "print its measured figures (the family's score: test accuracy or mean cosine to the original; "
                       "size in bytes, latency) and, with --out, export it "
                       "(state dict, TorchScript, ONNX) with the recipe and figures.json.")
    a.add_argument("--recipe", required=True, metavar="FILE", help="recipe file: .yaml, .yml or .json")
    a.add_argument("--model", metavar="M", help=f"the model to compress (default: the recipe's); one of {samples}")
    a.add_argument("--data", metavar="FILE", help="data for a model file (not for sample models, which bring theirs)")
    a.add_argument("--architecture", choices=list(ARCHITECTURES), metavar="NAME",
                   help=f"the architecture a weights file (state dict, safetensors) is for: {', '.join(ARCHITECTURES)}")
    a.add_argument("--out", metavar="DIR", help="export the compressed model into this folder (created if needed)")
    a.add_argument("--formats", default=",".join(FORMATS), metavar="LIST",
                   help=f"export formats, comma-separated (default: {','.join(FORMATS)})")
    a.add_argument("--no-latency", action="store_true", help="skip timing (faster)")
    a.add_argument("--threads", type=int, metavar="N", help="torch threads for timing (default: torch's)")
    a.add_argument("--json", action="store_true", help="print the recipe and figures as JSON")
    a.set_defaults(run=cmd_apply)

    s = sub.add_parser("sweep", help="write the Trade-offs table (prune ratio x bit width) as CSV",
                       description="Sweep prune ratios x bit widths as the Trade-offs page does (same function, same "
                       "numbers) and write one row per configuration as CSV, scored by the model family's metric "
                       "(test accuracy, or mean cosine to the original on the quick sentences for minilm). Defaults: "
                       "L1, per layer, with structured pruning (channels; heads and FFN neurons for minilm), "
                       "per-tensor grid, 20 ratios x 7 bit widths.")
    s.add_argument("--model", required=True, metavar="M", help=f"one of {samples}, or a model file")
    s.add_argument("--data", metavar="FILE", help="data for a model file (not for sample models, which bring theirs)")
    s.add_argument("--architecture", choices=list(ARCHITECTURES), metavar="NAME",
                   help=f"the architecture a weights file (state dict, safetensors) is for: {', '.join(ARCHITECTURES)}")
    s.add_argument("--out", required=True, metavar="FILE", help="CSV file to write ('-' for standard output)")
    s.add_argument("--methods", nargs="+", default=["l1"], choices=list(METHODS), metavar="METHOD",
                   help=f"pruning methods: {', '.join(METHODS)} (default: l1)")
    s.add_argument("--structured", action=argparse.BooleanOptionalAction, default=True,
                   help="add structurally pruned models to the grid: the family's units (default: yes)")
    s.add_argument("--scope", choices=list(SCOPES), default="layer", help="per layer or global (default: layer)")
    s.add_argument("--per-channel", action="store_true", help="one quantization scale per output channel")
    s.add_argument("--ratios", type=_floats, default=tradeoffs.RATIOS, metavar="LIST",
                   help="prune ratios, comma-separated (default: 0,0.05,...,0.95)")
    s.add_argument("--bits", type=_ints, default=tradeoffs.BITS, metavar="LIST",
                   help="bit widths, comma-separated; 32 = fp32 (default: 32,16,8,6,4,3,2)")
    s.add_argument("--int8", action="store_true", help="add the family's real int8 engines (minilm: int8, int8+emb)")
    s.add_argument("--latency", action="store_true", help="also time every real fp32 model at batch 256 (slower; "
                   "classifiers)")
    s.add_argument("--threads", type=int, metavar="N", help="torch threads (default: torch's)")
    s.add_argument("--ray", metavar="ADDRESS", default=None,
                   help="compute the grid on a Ray cluster: 'auto' (the cluster this machine is part of) or the "
                        "head's host:port (default: in this process; pip install ray==2.60.0 first)")
    s.set_defaults(run=cmd_sweep)

    x = sub.add_parser("experiments", help="run the distillation experiments and print their table",
                       description="The Distillation page's experiments, by the same functions: scarce labels "
                       "(distilled vs scratch at each share of labels), dark knowledge (recall of a class no student "
                       "saw) and weak vs strong (random init vs the teacher's thinned weights, on little data); "
                       "classifiers only. Every figure: mean ± sample sd over seeds, on the test split.")
    x.add_argument("--model", required=True, metavar="M",
                   help=f"a classifier: one of {', '.join(list_samples('classifier'))}, or a model file")
    x.add_argument("--data", metavar="FILE", help="data for a model file (not for sample models, which bring theirs)")
    x.add_argument("--seeds", type=int, default=E.SEEDS, metavar="N", help=f"seeds per figure (default {E.SEEDS})")
    x.add_argument("--only", nargs="+", choices=EXPERIMENTS, metavar="NAME",
                   help=f"run only these: {', '.join(EXPERIMENTS)} (default: all three)")
    x.add_argument("--labels", type=_floats, default=tuple(f * 100 for f in E.FRACTIONS), metavar="LIST",
                   help="scarce labels: shares of the training labels, in %%, comma-separated (default: "
                        f"{','.join(f'{f * 100:g}' for f in E.FRACTIONS)})")
    x.add_argument("--held-out", type=int, default=E.DarkConfig().held_out, metavar="C",
                   help=f"dark knowledge: the class held out of the training data (default {E.DarkConfig().held_out})")
    x.add_argument("--share", type=float, default=E.WeakStrongConfig().share * 100, metavar="P",
                   help="weak vs strong: the share of training data, in %% (default "
                        f"{E.WeakStrongConfig().share * 100:g})")
    x.add_argument("--epochs", type=int, default=E.TRAINING.epochs, metavar="N",
                   help=f"epochs' worth of steps per student (default {E.TRAINING.epochs})")
    x.add_argument("--json", action="store_true", help="print the results as JSON")
    x.set_defaults(run=cmd_experiments, threads=None)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        if args.command is None:
            raise UsageError("choose a command: apply or sweep, or experiments")
        if args.threads is not None:
            if args.threads < 1:
                raise UsageError(f"--threads must be at least 1, got {args.threads}")
            torch.set_num_threads(args.threads)
        run: Callable[[argparse.Namespace], int] = args.run   # the command's cmd_* function
        return run(args)
    except UploadError as e:   # a model or data file that cannot be used: the dashboard's message
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except executor.ExecutorError as e:   # no cluster at the address, Ray not installed
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except (UsageError, SweepError, ValueError) as e:   # bad arguments, recipes or settings
        print(f"{PROG}: error: {e} (see {PROG} --help)" if isinstance(e, UsageError) else f"{PROG}: error: {e}",
              file=sys.stderr)
        return 2
    except (SampleError, OSError) as e:   # a model or file that cannot be read or written
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:   # a failure of ours: one line, and the traceback when asked for
        if os.environ.get("SLIMLAB_DEBUG"):
            raise
        line = (str(e).strip().splitlines() or [""])[0][:300]
        print(f"{PROG}: error: {type(e).__name__}: {line} (set SLIMLAB_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


__all__ = ["main", "parser", "resolve_model", "UsageError", "Progress", "figure_lines"]
