"""Plot builders of the distillation experiments (slimcore.experiments): pure functions from their records to Plotly
figures. Every figure of ours is a mean over seeds with ± one sample sd as error bars and each seed's value in the
hover; published figures are drawn apart, in grey, and named as published reference in their own setting."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from .experiments import Reference, Spread

DISTILLED = "#2563eb"
SCRATCH = "#ea580c"
STRONG = "#16a34a"
PUBLISHED_COLOR = "#9ca3af"
LINE = "#1f2937"


def _figure(traces: list[dict[str, Any]], title: str, x: str, y: str, height: int = 360,
            shapes: Sequence[dict[str, Any]] = (), annotations: Sequence[dict[str, Any]] = (),
            **layout: Any) -> go.Figure:
    """A figure in the house layout (legend below the axis title), built in one constructor call."""
    return go.Figure(data=traces, layout=dict(
        title=dict(text=title), height=height, margin=dict(l=50, r=20, t=60, b=45),
        legend=layout.pop("legend", dict(orientation="h", y=-0.3)), shapes=list(shapes), annotations=list(annotations),
        xaxis=dict(title=dict(text=x), **layout.pop("xaxis", {})),
        yaxis=dict(title=dict(text=y), ticksuffix=" %", **layout.pop("yaxis", {})), **layout))


def _seeds(s: Spread) -> str:
    return ", ".join(f"{v * 100:.1f}" for v in s.values)


def _hline(y: float, text: str, left: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """A dotted horizontal line across the plot at y (in percent) and its label at the right end (or the left)."""
    return (dict(type="line", x0=0, x1=1, xref="paper", y0=y, y1=y, line=dict(color=LINE, dash="dot", width=1.2)),
            dict(x=0 if left else 1, xref="paper", y=y, text=text, showarrow=False, xanchor="left" if left else "right",
                 yanchor="bottom", font=dict(size=11)))


def _bars(name: str, categories: Sequence[str], spreads: Sequence[Spread | None],
          color: str | list[str]) -> dict[str, Any]:
    """Bars of means with ± sd error bars (one colour, or one per bar); the seeds' values in the hover."""
    return dict(type="bar", name=name, x=list(categories), marker=dict(color=color),
                y=[None if s is None else s.mean * 100 for s in spreads],
                error_y=dict(type="data", array=[0 if s is None else s.sd * 100 for s in spreads], visible=True,
                             color=LINE, thickness=1.2),
                text=["" if s is None else f"{s.mean * 100:.1f}" for s in spreads],   # inside: outside, the error
                textposition=["inside" if s is not None and s.mean >= 0.1 else "outside" for s in spreads],  # bar ran
                insidetextanchor="start", insidetextfont=dict(color="white"), cliponaxis=False,             # over it
                customdata=[["" if s is None else _seeds(s), 0 if s is None else s.seeds] for s in spreads],
                hovertemplate="%{x}: %{y:.1f} % (mean of %{customdata[1]} seeds: %{customdata[0]})"
                              f"<extra>{name}</extra>")


def _reference_bars(categories: Sequence[str], refs: Sequence[Reference | None], setting: str) -> dict[str, Any]:
    name = f"published reference: {setting}"
    return dict(type="bar", name=name, x=list(categories), y=[None if r is None else r.value * 100 for r in refs],
                marker=dict(color=PUBLISHED_COLOR, pattern=dict(shape="/")),
                text=["" if r is None else f"{r.value * 100:.1f}" for r in refs], textposition="outside",
                cliponaxis=False,
                customdata=["" if r is None else f"{r.label} — {r.setting}; {r.source}" for r in refs],
                hovertemplate="%{customdata}: %{y:.1f} %<extra>published, not ours</extra>")


def scarce_labels_chart(percents: Sequence[float], distilled: Sequence[Spread], scratch: Sequence[Spread],
                        teacher: float | None = None, references: Sequence[tuple[float, Reference]] = (),
                        marker: float | None = None) -> go.Figure:
    """Test accuracy of the distilled and the scratch student against the share of training labels (in percent, a log
    axis), mean ± sd with each seed as a dot; the teacher as a dotted line; published figures as grey diamonds at
    their share of data (`references`: (percent, Reference) pairs); a dashed marker at the slider's share."""
    traces: list[dict[str, Any]] = []
    for name, spreads, color in (("distilled (labels + teacher's soft targets on all inputs)", distilled, DISTILLED),
                                 ("scratch (labels alone)", scratch, SCRATCH)):
        traces.append(dict(type="scatter", mode="lines+markers", name=name, x=list(percents),
                           y=[s.mean * 100 for s in spreads], line=dict(color=color),
                           error_y=dict(type="data", array=[s.sd * 100 for s in spreads], visible=True, color=color),
                           customdata=[[_seeds(s), s.seeds] for s in spreads],
                           hovertemplate="%{x:g} % of labels: %{y:.1f} % (mean of %{customdata[1]} seeds: "
                                         "%{customdata[0]})" + f"<extra>{name.split(' (')[0]}</extra>"))
        traces.append(dict(type="scatter", mode="markers", name=f"{name.split(' (')[0]}: each seed", showlegend=False,
                           x=[p for p, s in zip(percents, spreads) for _ in s.values],
                           y=[v * 100 for s in spreads for v in s.values],
                           marker=dict(color=color, size=5, opacity=0.35), hoverinfo="skip"))
    if references:
        traces.append(dict(type="scatter", mode="markers+text", name="published reference: Hinton et al. 2015, "
                           "speech frame accuracy (their setting)", x=[p for p, _ in references],
                           y=[r.value * 100 for _, r in references],
                           text=[f"{r.value * 100:.1f}" for _, r in references],
                           textposition="middle right",
                           marker=dict(color=PUBLISHED_COLOR, symbol="diamond-open", size=10, line=dict(width=2)),
                           customdata=[f"{r.label} — {r.setting}" for _, r in references],
                           hovertemplate="%{customdata}: %{y:.1f} %<extra>published, not ours</extra>"))
    shapes, notes = [], []
    if teacher is not None:
        line, note = _hline(teacher * 100, f"teacher {teacher * 100:.1f} %")
        shapes.append(line)
        notes.append(note)
    if marker is not None:
        shapes.append(dict(type="line", x0=marker, x1=marker, y0=0, y1=1, yref="paper",
                           line=dict(color=LINE, dash="dash", width=1.2)))
    ticks = sorted({*percents, *(p for p, _ in references)})
    return _figure(traces, "Scarce labels: test accuracy against the share of training labels", "share of the "
                   "training labels used, % (log axis)", "test accuracy", shapes=shapes, annotations=notes,
                   xaxis=dict(type="log", tickmode="array", tickvals=ticks, ticktext=[f"{t:g}" for t in ticks]),
                   legend=dict(orientation="h", y=-0.35), height=400)


def dark_knowledge_chart(held_out: int, distilled: Sequence[Spread], scratch: Sequence[Spread],
                         references: Sequence[Reference | None] = ()) -> go.Figure:
    """Recall of the class no student saw, and test accuracy, for the distilled and the scratch student; then the same
    with the class's bias raised (the extra). Four spreads each, in that order: recall, accuracy, recall with the
    bias raised, accuracy with it. `references`: the published figures in the same order (None where there is none)."""
    categories = [f"recall of {held_out} (never seen)", "test accuracy", f"recall of {held_out}, bias raised (extra)",
                  "test accuracy, bias raised (extra)"]
    traces = [_bars("distilled", categories, distilled, DISTILLED),
              _bars("scratch (labels alone)", categories, scratch, SCRATCH)]
    if references:
        traces.append(_reference_bars(categories, references, "Hinton et al. 2015, MNIST, 3 held out (their setting)"))
    return _figure(traces, f"Dark knowledge: no {held_out} in the training data", "", "on the test split",
                   barmode="group", yaxis=dict(range=[0, 112]), height=400, legend=dict(orientation="h", y=-0.2))


def weak_strong_chart(arms: Sequence[str], accuracy: Sequence[Spread], thinned_untrained: float | None = None,
                      teacher: float | None = None) -> go.Figure:
    """Test accuracy of each weak-vs-strong arm (mean ± sd over seeds): weak arms in blue, strong (the teacher's
    thinned weights) in green, labels-alone controls lighter; the teacher and the thinned teacher before training as
    dotted lines."""
    def color(arm: str) -> str:
        base = STRONG if "teacher" in arm else DISTILLED
        return base if "distilled" in arm else base + "88"

    traces = [dict(_bars("test accuracy", list(arms), list(accuracy), [color(a) for a in arms]), showlegend=False)]
    shapes, notes = [], []
    for value, text, left in ((teacher, "teacher", False),
                              (thinned_untrained, "thinned teacher, before training", True)):
        if value is not None:
            line, note = _hline(value * 100, f"{text} {value * 100:.1f} %", left)
            shapes.append(line)
            notes.append(note)
    return _figure(traces, "Weak vs strong: the same limited data and budget", "", "test accuracy",
                   shapes=shapes, annotations=notes, yaxis=dict(range=[0, 112]), height=400,
                   xaxis=dict(tickangle=0, tickmode="array", tickvals=list(arms),
                              ticktext=[a.replace(", ", ",<br>") for a in arms]))


__all__ = ["scarce_labels_chart", "dark_knowledge_chart", "weak_strong_chart"]
