"""Layering rules that can be read from the code: no module uses another module's private (_name) helpers, and
slimcore.families stays the one place that knows what differs between kinds of model."""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from tests.conftest import ROOT

OURS = ("slimcore", "slimui")


def _sources() -> list[Path]:
    dirs = [ROOT / d for d in (*OURS, "pages", "views", "benchmarks")]
    return [ROOT / "app.py", *(p for d in dirs if d.is_dir() for p in sorted(d.rglob("*.py")))]


def _our_module(name: str, package: str, level: int) -> str | None:
    """The absolute name of an imported module if it is one of ours (slimcore.*, slimui.*), else None."""
    if level:
        name = importlib.util.resolve_name("." * level + name, package) if name else package
    return name if name.split(".")[0] in OURS else None


def private_uses(path: Path, root: Path = ROOT) -> list[str]:
    """Private names this file takes from another of our modules: `from x import _y` and `alias._y`."""
    rel = path.relative_to(root).with_suffix("")
    package = ".".join(rel.parts[:-1]) if rel.parts[0] in OURS else ""
    this = ".".join(rel.parts)
    tree = ast.parse(path.read_text(), str(path))
    aliases: dict[str, str] = {}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = _our_module(node.module or "", package, node.level)
            if mod is None:
                continue
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__") and mod != this:
                    found.append(f"{path.name}: from {mod} import {a.name}")
                aliases[a.asname or a.name] = f"{mod}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in OURS:
                    aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            found.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_helpers():
    offenders = [hit for p in _sources() for hit in private_uses(p)]
    assert offenders == [], "make the helper public where two modules need it:\n" + "\n".join(offenders)


def test_the_rule_catches_both_spellings(tmp_path):
    bad = tmp_path / "slimcore" / "probe.py"
    bad.parent.mkdir()
    bad.write_text("from . import pruning as P\nfrom .pruning import _channel_scores\nP._keep_channels\n")
    hits = private_uses(bad, tmp_path)
    assert len(hits) == 2 and "_channel_scores" in hits[0] and "P._keep_channels" in hits[1]
