"""Plot builders: pure functions from plain data (arrays, records) to Plotly figures. No model runs here."""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

DARK = "#1f2937"
KEPT = "#2563eb"
REMOVED = "#dc2626"
PRUNED = "#4b5563"    # weights pruned: dark grey, and those kept light blue, in the histogram and in the mask
KEPT_LIGHT = "#60a5fa"


def _hist(values: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin centers and counts of a histogram over the values' own range."""
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    counts, edges = np.histogram(values, np.linspace(lo, hi if hi > lo else lo + 1e-6, bins + 1))
    return (edges[:-1] + edges[1:]) / 2, counts


TITLE_CHARS = 46   # a title longer than this ran past a half-width chart on a 1280 px window


def _wrap_title(title: str) -> tuple[str, int]:
    """A long title goes on two lines, the detail on a second, smaller one: Plotly never wraps a title, and a long one
    was cut at the chart's right edge. It breaks after " —" or ":", or before a closing parenthesis ("Accuracy against
    prune ratio (L1 magnitude |w|, per layer)"), wherever the longer line is shortest; the text stays the same but for
    the line break. Returns the title and its number of lines."""
    if len(title) <= TITLE_CHARS or "<br>" in title:
        return title, 1
    cuts = [(i + 2, i + 3) for i in range(len(title)) if title.startswith(" — ", i)]
    cuts += [(i + 1, i + 2) for i in range(len(title)) if title.startswith(": ", i)]
    paren = title.rfind(" (")
    if paren > 0 and title.endswith(")"):
        cuts.append((paren, paren + 1))
    if not cuts:
        return title, 1
    end, start = min(cuts, key=lambda c: max(c[0], len(title) - c[1]))
    return f"{title[:end]}<br><span style=\"font-size:13px\">{title[start:]}</span>", 2


def _wrap_words(text: str, width: int) -> str:
    """Text broken into lines of at most about `width` characters at spaces (joined with <br>)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines) or text


def _figure(traces: list[Any], title: str, x: str, y: str, height: int = 320, shapes: Sequence[dict[str, Any]] = (),
            annotations: Sequence[dict[str, Any]] = (), **layout: Any) -> go.Figure:
    """A figure with the house layout, built in one constructor call: Plotly's update_layout / add_vline
    validate as they go and cost ~5 ms each, which a slider move would pay every time."""
    title, lines = _wrap_title(title)
    return go.Figure(data=traces, layout=dict(
        title=dict(text=title), height=height + 18 * (lines - 1),
        margin=dict(l=50, r=20, t=50 + 18 * (lines - 1), b=45),
        legend=layout.pop("legend", dict(orientation="h", y=-0.3)),   # at -0.25 it ran into the x axis's title
        bargap=0.02, shapes=list(shapes), annotations=list(annotations),
        xaxis=dict(title=dict(text=x), **layout.pop("xaxis", {})),
        yaxis=dict(title=dict(text=y), **layout.pop("yaxis", {})),
        **layout))


def _vline(x: float, color: str = DARK, dash: str = "dash") -> dict[str, Any]:
    return dict(type="line", x0=x, x1=x, y0=0, y1=1, yref="paper", line=dict(color=color, dash=dash, width=1.5))


def weight_histogram(values: np.ndarray, title: str = "Weights", threshold: float | None = None,
                     after: np.ndarray | None = None, bins: int = 80) -> go.Figure:
    """Histogram of weight values; given the values kept (`after`), each bar is split into the weights kept (light
    blue) and those pruned (dark grey), stacked under an outline of all weights; optionally +-threshold lines drawn."""
    values = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    edges = np.linspace(lo, hi if hi > lo else lo + 1e-6, bins + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    counts = np.histogram(values, edges)[0]
    if after is None:
        traces = [dict(type="bar", x=centers, y=counts, name="weights", marker=dict(color=KEPT), opacity=0.9,
                       hovertemplate="%{x:.3g}: %{y:,} weights<extra></extra>")]
    else:
        kept = np.histogram(np.asarray(after, dtype=np.float64).ravel(), edges)[0]
        traces = [  # all weights first (a step outline: bars would stack on the others), then kept and pruned
            dict(type="scatter", x=centers, y=counts, mode="lines", name="all weights",   # steps at the bin edges
                 line=dict(color=DARK, width=1, shape="hvh"), hoverinfo="skip", legendrank=1003),
            dict(type="bar", x=centers, y=kept, name="kept", marker=dict(color=KEPT_LIGHT), legendrank=1001,
                 hovertemplate="%{x:.3g}: %{y:,} kept<extra></extra>"),
            dict(type="bar", x=centers, y=np.clip(counts - kept, 0, None), name="pruned", marker=dict(color=PRUNED),
                 legendrank=1002, hovertemplate="%{x:.3g}: %{y:,} pruned<extra></extra>")]
    shapes, notes = [], []
    if threshold is not None and threshold > 0:
        shapes = [_vline(-threshold), _vline(threshold)]
        notes = [dict(x=threshold, y=1, yref="paper", text=f"|w| = {threshold:.3g}", showarrow=False, xanchor="left",
                      yanchor="top")]
    return _figure(traces, title, "weight value", "count", shapes=shapes, annotations=notes, barmode="stack",
                   legend=dict(orientation="h", y=-0.3, traceorder="normal"))   # stacked: Plotly would reverse it


def layer_bars(names: Sequence[str], values: Sequence[float], title: str, axis: str) -> go.Figure:
    """One bar per layer (parameters, MACs, sparsity, ...). Long layer names (an encoder's
    "encoder.layer.0.attention.self.query") stand upright below the bars: the chart grows to hold them, else their ends
    were cut at the bottom of the chart and the axis title was drawn across them."""
    longest = max((len(str(n)) for n in names), default=0)
    return _figure([dict(type="bar", x=list(names), y=list(values), marker=dict(color=KEPT),
                         hovertemplate="%{x}: %{y:,}<extra></extra>")], title, "layer", axis,
                   height=280 + (int(5.5 * longest) if longest > 12 else 0),
                   xaxis=dict(automargin=True, tickfont=dict(size=10) if longest > 12 else {}))


def example_gallery(inputs: np.ndarray, labels: Sequence[int], preds: Sequence[int], confidences: Sequence[float],
                    cols: int = 6) -> go.Figure:
    """Test inputs with true label and the model's prediction: 2-D inputs as images (channels averaged), 1-D inputs as
    signals."""
    inputs = np.asarray(inputs)
    n = len(inputs)
    rows = max(1, math.ceil(n / cols))
    titles = [f"{'✓' if p == y else '✗'} pred {p} ({c:.0%}) · true {y}" for y, p, c in zip(labels, preds, confidences)]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.03, vertical_spacing=0.12)
    for i, x in enumerate(inputs):
        r, c = divmod(i, cols)
        x = np.squeeze(x)
        if x.ndim == 3:  # channels first (an uploaded colour image): shown as the mean over channels
            x = x.mean(axis=0)
        elif x.ndim > 3:
            x = x.ravel()
        if x.ndim == 2:
            fig.add_trace(go.Heatmap(z=x[::-1], colorscale="Greys", showscale=False, hoverinfo="skip"), r + 1, c + 1)
        else:
            fig.add_trace(go.Scatter(y=x, mode="lines", line=dict(color=KEPT if preds[i] == labels[i] else REMOVED),
                                     hoverinfo="skip"), r + 1, c + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_annotations(font_size=11)
    # square pixels: each image's y axis scaled to its x axis, the image shrunk inside its cell (not stretched to it)
    square: dict[str, dict[str, Any]] = {}
    for trace in fig.data:
        if trace.type == "heatmap":   # trace.xaxis "x3" is laid out by layout.xaxis3
            square["xaxis" + trace.xaxis[1:]] = dict(constrain="domain")
            square["yaxis" + trace.yaxis[1:]] = dict(scaleanchor=trace.xaxis, scaleratio=1, constrain="domain")
    fig.update_layout(height=170 * rows + 40, margin=dict(l=10, r=10, t=40, b=10), showlegend=False, **square)
    return fig


def mask_heatmap(mask: np.ndarray, title: str = "Sparsity mask") -> go.Figure:
    """A weight mask (True = kept) as a picture, kept weights light blue and pruned ones dark grey, a two-colour bar
    saying which is which: a Linear layer as its (out, in) matrix, a Conv1d as (out, in x k), a Conv2d with its k x k
    filters tiled (out x kh, in x kw). Any boolean grid (say the heads each layer keeps) is drawn the same way."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim == 4:
        out, inp, kh, kw = mask.shape
        image = mask.transpose(0, 2, 1, 3).reshape(out * kh, inp * kw)
    else:
        image = mask.reshape(mask.shape[0], -1)
    kept = mask.mean() if mask.size else 1.0
    heat = dict(type="heatmap", z=image.astype(np.uint8), zmin=0, zmax=1,   # 0 = pruned, 1 = kept: two flat halves
                colorscale=[[0, PRUNED], [0.5, PRUNED], [0.5, KEPT_LIGHT], [1, KEPT_LIGHT]],
                colorbar=dict(tickmode="array", tickvals=[0.25, 0.75], ticktext=["pruned", "kept"], thickness=14,
                              len=0.5, lenmode="fraction", y=0.5, outlinewidth=1, outlinecolor=DARK),
                hovertemplate="row %{y}, column %{x}: %{z}<extra>1 = kept, 0 = pruned</extra>")
    return _figure([heat], f"{title} — {1 - kept:.1%} pruned",
                   "input (x kernel width)" if mask.ndim > 2 else "input",
                   "output channel (x kernel height)" if mask.ndim == 4 else "output channel",
                   yaxis=dict(autorange="reversed"))


def accuracy_curve(x: Sequence[float], y: Sequence[float], current: tuple[float, float] | None = None,
                   title: str = "Accuracy", x_title: str = "prune ratio", reference: float | None = None,
                   extra: dict[str, tuple[Sequence[float], Sequence[float]]] | None = None) -> go.Figure:
    """Accuracy (as a fraction, drawn in %) against a setting, the current point marked, the baseline dotted, and
    further named curves (for example after fine-tuning)."""
    traces = [dict(type="scatter", x=list(x), y=[v * 100 for v in y], mode="lines+markers", name="one-shot",
                   line=dict(color=KEPT), hovertemplate="%{x}: %{y:.2f} %<extra></extra>")]
    for i, (name, (ex, ey)) in enumerate((extra or {}).items()):
        traces.append(dict(type="scatter", x=list(ex), y=[v * 100 for v in ey], mode="lines+markers", name=name,
                           line=dict(color=["#16a34a", "#9333ea", "#ea580c"][i % 3]),
                           hovertemplate="%{x:.2f}: %{y:.2f} %<extra></extra>"))
    if current is not None:
        traces.append(dict(type="scatter", x=[current[0]], y=[current[1] * 100], mode="markers", name="current setting",
                           marker=dict(color=REMOVED, size=13, symbol="diamond"),
                           hovertemplate="%{x}: %{y:.2f} %<extra>current</extra>"))
    shapes, notes = [], []
    if reference is not None:
        shapes = [dict(type="line", xref="paper", x0=0, x1=1, y0=reference * 100, y1=reference * 100,
                       line=dict(color=DARK, dash="dot", width=1.5))]
        notes = [dict(xref="paper", x=0, y=reference * 100, text="original", showarrow=False, xanchor="left",
                      yanchor="top")]
    return _figure(traces, title, x_title, "test accuracy", shapes=shapes, annotations=notes,
                   yaxis=dict(range=[0, 101], ticksuffix=" %"))


def line_chart(x: Sequence[float], series: Mapping[str, Sequence[float | None]], title: str, x_title: str,
               y_title: str, percent: bool = False, marker: float | None = None, height: int = 300) -> go.Figure:
    """Named lines over a shared x (epochs, temperatures, ...); fractions drawn as % when `percent`; an optional
    vertical marker at the current setting."""
    colors = [KEPT, "#16a34a", REMOVED, "#9333ea", "#ea580c"]
    scale = 100 if percent else 1
    traces = [dict(type="scatter", x=list(x), y=[None if v is None else v * scale for v in ys], mode="lines+markers",
                   name=name, line=dict(color=colors[i % len(colors)]),
                   hovertemplate="%{x}: %{y:.3g}" + (" %" if percent else "") + f"<extra>{name}</extra>")
              for i, (name, ys) in enumerate(series.items())]
    return _figure(traces, title, x_title, y_title, height=height,
                   shapes=[_vline(marker)] if marker is not None else [],
                   yaxis=dict(ticksuffix=" %") if percent else {})


LOG_FLOOR = 1e-12   # the smallest probability a log axis shows: below it (0 included) a bar is drawn at the floor


def soft_targets(p1: Sequence[float], pt: Sequence[float], temperature: float, entropies: tuple[float, float],
                 true_class: int, log: bool = False) -> go.Figure:
    """A teacher's class probabilities at T = 1 and at temperature T, side by side, the true class outlined. On a log
    axis (`log`) the tiny wrong-class probabilities show too: the axis reaches the decade of the smallest one, but not
    below LOG_FLOOR, and a bar under that floor (0 among them) stands at it; hovering a bar shows its real value."""
    classes = [str(c) for c in range(len(p1))]
    line = [2 if c == true_class else 0 for c in range(len(p1))]
    pcts = [[float(v) * 100 for v in p] for p in (p1, pt)]
    yaxis = dict(ticksuffix=" %", range=[0, 101])
    y_title, shown, notes = "probability", pcts, []
    if log:
        positive = [v for p in pcts for v in p if v > 0]
        floor = 10.0 ** math.floor(math.log10(max(min(positive, default=100.0), LOG_FLOOR * 100)))
        shown = [[max(v, floor) for v in p] for p in pcts]
        yaxis = dict(type="log", ticksuffix=" %", exponentformat="power",   # a decade below the floor: a floored
                     range=[math.log10(floor) - 1, math.log10(100) + 0.15])   # bar keeps a visible stub
        y_title = "probability (log scale)"
        if any(v < floor for p in pcts for v in p):
            notes = [dict(x=1, y=1, xref="paper", yref="paper", xanchor="right", yanchor="bottom", showarrow=False,
                          text=f"below {floor:.0e} %: drawn at {floor:.0e} %", font=dict(size=11))]
    traces = [dict(type="bar", x=classes, y=shown[0], customdata=pcts[0],
                   name=f"T = 1 (entropy {entropies[0]:.2f} bits)",
                   marker=dict(color="#93c5fd", line=dict(color=DARK, width=line)),
                   hovertemplate="class %{x}: %{customdata:.3g} %<extra>T = 1</extra>"),
              dict(type="bar", x=classes, y=shown[1], customdata=pcts[1],
                   name=f"T = {temperature:g} (entropy {entropies[1]:.2f} bits)",
                   marker=dict(color=KEPT, line=dict(color=DARK, width=line)),
                   hovertemplate="class %{x}: %{customdata:.3g} %" + f"<extra>T = {temperature:g}</extra>")]
    return _figure(traces, f"Teacher's probabilities, softened at T = {temperature:g} (true class outlined)", "class",
                   y_title, barmode="group", yaxis=yaxis, annotations=notes)


# --- Trade-offs and sensitivity ----------------------------------------------------------------------------------

SERIES = [KEPT, "#16a34a", "#ea580c", "#9333ea", "#0891b2", "#ca8a04", "#db2777", "#64748b"]
FRONTIER = "#111827"


def tradeoff_scatter(x: Sequence[float] | np.ndarray, accuracy: Sequence[float], names: Sequence[str],
                     groups: Sequence[str], labels: Sequence[str], frontier: Sequence[int], chosen: int | None = None,
                     title: str = "Accuracy against size", x_title: str = "size", x_unit: str = "",
                     log_x: bool = True, reference: float | None = None, notes: Sequence[str] | None = None,
                     height: int = 460, y_title: str = "test accuracy", percent: bool = True) -> go.Figure:
    """Accuracy (fractions, drawn in %) of many configurations against a cost, one colour per group (for example
    the bit width), open markers where the cost is labelled "modelled" and filled ones otherwise (measured, or
    counted); the Pareto frontier (indices into the points) as a step line, the chosen point ringed, the original's
    accuracy dotted. Hovering a point shows its configuration, its cost and how that cost was obtained. Another
    quality than accuracy (say mean cosine) is drawn as given with `percent=False` and named by `y_title`."""
    x = np.asarray(x, dtype=np.float64)
    scale = 100 if percent else 1
    acc = np.asarray(accuracy, dtype=np.float64) * scale
    y_fmt = "%{y:.2f} %" if percent else "%{y:.4f}"
    notes = list(notes) if notes is not None else [""] * len(x)
    order = list(dict.fromkeys(groups))
    traces = []
    for i, g in enumerate(order):
        idx = [k for k, gk in enumerate(groups) if gk == g]
        traces.append(dict(
            type="scatter", x=x[idx], y=acc[idx], mode="markers", name=g,
            marker=dict(color=SERIES[i % len(SERIES)], size=9, line=dict(width=1.5, color=SERIES[i % len(SERIES)]),
                        symbol=["circle-open" if labels[k] == "modelled" else "circle" for k in idx]),
            customdata=[[names[k], labels[k], notes[k]] for k in idx],
            hovertemplate="<b>%{customdata[0]}</b><br>" + y_title + " " + y_fmt + "<br>" + x_title
                          + " %{x:,.4g}" + x_unit + " (%{customdata[1]})<br>%{customdata[2]}<extra></extra>"))
    front = sorted(frontier, key=lambda k: x[k])
    if front:
        traces.append(dict(type="scatter", x=x[front], y=acc[front], mode="lines", name="Pareto frontier",
                           line=dict(color=FRONTIER, width=2, shape="hv"), hoverinfo="skip"))
    if chosen is not None:
        traces.append(dict(type="scatter", x=[x[chosen]], y=[acc[chosen]], mode="markers", name="chosen",
                           marker=dict(color="rgba(0,0,0,0)", size=20, line=dict(color=REMOVED, width=3)),
                           hovertemplate=f"chosen: {names[chosen]}<extra></extra>"))
    shapes, annotations = [], []
    if reference is not None:
        shapes = [dict(type="line", xref="paper", x0=0, x1=1, y0=reference * scale, y1=reference * scale,
                       line=dict(color=DARK, dash="dot", width=1.5))]
        annotations = [dict(xref="paper", x=0, y=reference * scale, showarrow=False, xanchor="left", yanchor="bottom",
                            text=f"original {reference:.2%}" if percent else f"original {reference:.4g}",
                            font=dict(size=11))]
    unit = f" ({x_unit.strip()})" if x_unit.strip() else ""
    return _figure(traces, title, f"{x_title}{unit}" + (", log scale" if log_x else ""), y_title,
                   height=height, shapes=shapes, annotations=annotations, xaxis=dict(type="log" if log_x else "linear"),
                   yaxis=dict(range=[0, 102], ticksuffix=" %") if percent else dict(autorange=True))


def pipeline_waterfall(names: Sequence[str], sizes: Sequence[float], scores: Sequence[float],
                       labels: Sequence[str], title: str = "Size after each stage",
                       score_format: Callable[[float], str] = "{:.2%}".format,
                       size_unit: tuple[str, float] = (" KiB", 1 / 1024)) -> go.Figure:
    """A waterfall of bytes, stage by stage: the first bar is the original's size, each next one what a stage
    removed (red); under each stage its size (and whether measured), its ratio to the original and its score (the
    family's headline, written by `score_format`: Metric.format)."""
    sizes = [float(v) for v in sizes]
    steps = [sizes[0]] + [b - a for a, b in zip(sizes, sizes[1:])]
    same = len(set(labels)) == 1
    unit, scale = size_unit
    ticks = [f"{n}<br>{b * scale:,.1f}{unit}{'' if same else f' ({lab})'}<br>{sizes[0] / b:.1f}x · {score_format(a)}"
             for n, b, a, lab in zip(names, sizes, scores, labels)]
    bar = dict(type="waterfall", x=list(names), y=steps, measure=["absolute"] + ["relative"] * (len(sizes) - 1),
               textposition="none", customdata=[t.replace("<br>", " · ") for t in ticks],
               decreasing=dict(marker=dict(color=REMOVED)), totals=dict(marker=dict(color=KEPT)),
               increasing=dict(marker=dict(color=KEPT)), connector=dict(line=dict(color="#9ca3af", dash="dot")),
               hovertemplate="%{customdata}<extra></extra>")
    return _figure([bar], title, "", f"bytes ({labels[0]})" if same and labels else "bytes", height=400,
                   showlegend=False, xaxis=dict(tickmode="array", tickvals=list(names), ticktext=ticks, tickangle=0,
                                                tickfont=dict(size=10), automargin=True),
                   yaxis=dict(range=[0, sizes[0] * 1.08] if sizes else None))


def grouped_bars(categories: Sequence[str], series: Mapping[str, Sequence[float | None]], title: str, x_title: str,
                 y_title: str, log_y: bool = False, text_format: str = "{:.3g}", height: int = 340,
                 hover: str = "%{x}: %{y:.4g}", colors: Sequence[str] | None = None) -> go.Figure:
    """Bars side by side per category, one colour per named series (for example ours against a published
    reference, or an allocation against a uniform setting), each bar labelled with its value; the legend is shown
    even for a single series, so its name is never lost."""
    colors = list(colors) if colors is not None else SERIES
    traces = [dict(type="bar", x=list(categories), y=[None if v is None else float(v) for v in ys], name=name,
                   marker=dict(color=colors[i % len(colors)]), showlegend=True,
                   text=["" if v is None else text_format.format(v) for v in ys], textposition="outside",
                   cliponaxis=False, hovertemplate=hover + f"<extra>{name}</extra>")
              for i, (name, ys) in enumerate(series.items())]
    values = [float(v) for ys in series.values() for v in ys if v is not None and v > 0]
    yaxis = dict(type="log") if log_y else dict(range=[0, max(values, default=1) * 1.2])
    # long category names ("pruned + fine-tuned") wrapped upright: turned, they were clipped and ran into the legend
    ticks = [_wrap_words(str(c), 14) for c in categories]
    lines = max((t.count("<br>") + 1 for t in ticks), default=1)
    return _figure(traces, title, x_title, y_title, height=height + 14 * (lines - 1), barmode="group", yaxis=yaxis,
                   xaxis=dict(tickmode="array", tickvals=list(categories), ticktext=ticks, tickangle=0),
                   legend=dict(orientation="h", y=-0.3 - 0.09 * (lines - 1)))


def sensitivity_heatmap(layers: Sequence[str], settings: Sequence[str], accuracy: np.ndarray, reference: float,
                        title: str = "Accuracy with one layer compressed", x_title: str = "prune ratio") -> go.Figure:
    """Layers (rows) x settings (columns) -> accuracy (fractions, drawn in % and written in each cell), red where a
    layer breaks the model and green where it is left at the original's accuracy."""
    z = np.asarray(accuracy, dtype=np.float64) * 100
    heat = dict(type="heatmap", z=z, x=[str(s) for s in settings], y=list(layers), zmin=0, zmax=reference * 100,
                colorscale="RdYlGn", text=[[f"{v:.1f}" for v in row] for row in z], texttemplate="%{text}",
                textfont=dict(size=11), colorbar=dict(title=dict(text="accuracy, %"), ticksuffix=" %"),
                hovertemplate="%{y} at %{x}: %{z:.2f} %<extra></extra>", xgap=1, ygap=1)
    return _figure([heat], title, x_title, "layer (alone)", height=max(260, 60 * len(layers) + 120),
                   xaxis=dict(type="category"), yaxis=dict(autorange="reversed", type="category"))


# --- Quantization lab ---------------------------------------------------------------------------------------------
# These figures are redrawn on every move of a slider, so each is built in one go from plain dicts: Plotly's
# add_vline / add_annotation / update_layout validate as they go and cost ~5 ms each.

MAX_LEVEL_LINES = 64    # beyond this many grid levels, draw every n-th: the lines would merge into a block


def levels_histogram(values: np.ndarray, levels: np.ndarray, title: str = "Weights and quantization levels",
                     note: str = "", bins: int = 80) -> go.Figure:
    """Histogram of fp32 weights with the quantization grid drawn over it as vertical lines (every n-th level when
    there are more than MAX_LEVEL_LINES)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    levels = np.sort(np.asarray(levels, dtype=np.float64).ravel())
    centers, counts = _hist(values, bins)
    step = max(1, math.ceil(len(levels) / MAX_LEVEL_LINES))
    top = float(counts.max()) * 1.08 if counts.size and counts.max() > 0 else 1.0
    shown = levels[::step]
    xs = np.repeat(shown, 3)   # a vertical segment per level: (v, 0) -> (v, top), then a NaN gap
    xs[2::3] = np.nan
    ys = np.tile([0.0, top, np.nan], len(shown))
    nth = {2: "2nd", 3: "3rd"}.get(step, f"{step}th")
    label = f"{len(levels):,} quantization levels" + (f" (every {nth} drawn)" if step > 1 else "")
    traces = [go.Bar(x=centers, y=counts, name="fp32 weights", marker_color=KEPT, opacity=0.75,
                     hovertemplate="%{x:.4g}: %{y:,}<extra></extra>"),
              go.Scatter(x=xs, y=ys, mode="lines", name=label, line=dict(color=REMOVED, width=1), opacity=0.6,
                         hoverinfo="skip")]
    notes = [dict(x=0, y=1, xref="paper", yref="paper", text=note, showarrow=False, xanchor="left", yanchor="bottom",
                  font=dict(size=11))] if note else []
    return _figure(traces, title, "weight value", "count", annotations=notes)


def quantized_histogram(values: np.ndarray, title: str = "Quantized values", max_bars: int = 256) -> go.Figure:
    """How many weights landed on each quantized value: one bar per distinct value (a histogram when there are more
    than max_bars of them)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    distinct, counts = np.unique(values, return_counts=True)
    if len(distinct) <= max_bars:
        gaps = np.diff(distinct)
        width = float(gaps.min()) * 0.8 if gaps.size else (max(abs(float(distinct[0])) * 0.1, 1e-3) if distinct.size
                                                           else 1.0)
        bar = go.Bar(x=distinct, y=counts, width=width, marker_color=REMOVED, name="quantized",
                     hovertemplate="%{x:.4g}: %{y:,} weights<extra></extra>")
    else:
        centers, c = _hist(values, 80)
        bar = go.Bar(x=centers, y=c, marker_color=REMOVED, name="quantized",
                     hovertemplate="%{x:.4g}: %{y:,}<extra></extra>")
    n = len(distinct)
    return _figure([bar], f"{title}: {n:,} distinct value{'s' if n != 1 else ''}", "quantized weight value", "count")


def error_histogram(errors: np.ndarray, half_step: float | None = None, title: str = "Quantization error",
                    bins: int = 80) -> go.Figure:
    """Histogram of quantized minus original weights, with the +-scale/2 bound of round-to-nearest when given."""
    errors = np.asarray(errors, dtype=np.float64).ravel()
    centers, counts = _hist(errors, bins)
    bar = go.Bar(x=centers, y=counts, marker_color=DARK, opacity=0.8, name="error",
                 hovertemplate="%{x:.3g}: %{y:,}<extra></extra>")
    shapes, notes = [], []
    if half_step:
        shapes = [_vline(-half_step, REMOVED), _vline(half_step, REMOVED)]
        notes = [dict(x=half_step, y=1, yref="paper", text="± scale / 2", showarrow=False, xanchor="left",
                      yanchor="top", font=dict(color=REMOVED))]
    return _figure([bar], title, "quantized − original weight", "count", shapes=shapes, annotations=notes)


def sqnr_bars(names: Sequence[str], sqnr_db: Sequence[float], highlight: str | None = None,
              title: str = "SQNR per layer") -> go.Figure:
    """Signal-to-quantization-noise ratio per layer in dB; an exact layer (infinite SQNR) is drawn capped and
    labelled, the inspected layer in red."""
    vals = [float(v) for v in sqnr_db]
    finite = [v for v in vals if math.isfinite(v)]
    cap = (max(finite) if finite else 0.0) + 10.0
    ys = [v if math.isfinite(v) else (cap if v > 0 else 0.0) for v in vals]
    text = [f"{v:.1f} dB" if math.isfinite(v) else ("∞ (exact)" if v > 0 else "−∞") for v in vals]
    many = len(vals) > 12   # an encoder's 36 layers: labels on every bar overlapped, full names took the height
    bar = go.Bar(x=list(names), y=ys, text=text, textposition="none" if many else "outside", cliponaxis=False,
                 marker_color=[REMOVED if n == highlight else KEPT for n in names],
                 hovertemplate="%{x}: %{text}<extra></extra>")
    low, high = min([0.0, *ys]), max([1.0, *ys])
    xaxis = dict(tickmode="array", tickvals=list(names), ticktext=[_short_name(n) for n in names]) if many else {}
    return _figure([bar], title, "layer (value on hover)" if many else "layer", "SQNR (dB)", xaxis=xaxis,
                   yaxis=dict(range=[low * 1.18 - 1 if low < 0 else 0, high * 1.18 + 1]))


def _short_name(name: str) -> str:
    """A dotted layer name cut to its last parts ("encoder.layer.0.attention.self.query" -> "0.…self.query")."""
    parts = name.split(".")
    if len(parts) <= 2:
        return name
    block = next((p for p in parts if p.isdigit()), "")
    return (f"{block}.…" if block else "…") + ".".join(parts[-2:])


def bits_curve(bits: Sequence[int], acc: Sequence[float], current: tuple[float, float] | None = None,
               reference: float | None = None, points: dict[str, float] | None = None,
               title: str = "Accuracy against bit width", symmetric: bool | None = None) -> go.Figure:
    """Accuracy (a fraction, drawn in %) against weight bit width, the current setting marked, fp32 dotted, and
    single named points (for example ternary, drawn at 1.58 bits = log2 3). Where binary scores above 2 bits, a note
    says why (for the 2-bit grid's scheme: `symmetric` True or False; None when not known)."""
    traces = [go.Scatter(x=list(bits), y=[a * 100 for a in acc], mode="lines+markers", name="k-bit weights",
                         line=dict(color=KEPT), hovertemplate="%{x} bits: %{y:.2f} %<extra></extra>")]
    for i, (name, a) in enumerate((points or {}).items()):
        traces.append(go.Scatter(x=[math.log2(3)], y=[a * 100], mode="markers", name=name,
                                 marker=dict(color=["#16a34a", "#9333ea"][i % 2], size=11, symbol="square"),
                                 hovertemplate=f"{name}: %{{y:.2f}} %<extra></extra>"))
    if current is not None:
        traces.append(go.Scatter(x=[current[0]], y=[current[1] * 100], mode="markers", name="current setting",
                                 marker=dict(color=REMOVED, size=14, symbol="diamond"),
                                 hovertemplate="current: %{y:.2f} %<extra></extra>"))
    shapes, notes = [], []
    if reference is not None:
        shapes = [dict(type="line", x0=0, x1=1, xref="paper", y0=reference * 100, y1=reference * 100,
                       line=dict(color=DARK, dash="dot", width=1.5))]
        notes = [dict(x=1, xref="paper", y=reference * 100, text=f"fp32 {reference:.2%}", showarrow=False,
                      xanchor="right", yanchor="top")]
    if (why := _binary_note(bits, acc, symmetric)) is not None:
        notes.append(why)
    return _figure(traces, title, "weight bits", "test accuracy", shapes=shapes, annotations=notes,
                   legend=dict(orientation="h", y=-0.4),   # below the two-line "1 (bin)" tick and the axis title
                   xaxis=dict(tickmode="array", tickvals=list(bits), tickangle=0,   # upright: turned, they ran into
                              ticktext=["1<br>(bin)" if b == 1 else str(b) for b in bits]),   # the axis title
                   yaxis=dict(range=[0, 101], ticksuffix=" %"))


TWO_BIT_GRID = {   # what a 2-bit grid is, by scheme (None: not known), for the note on why binary can beat it
    True: "2-bit symmetric has 3 levels {−s, 0, +s}, s = max|w|",
    False: "2-bit asymmetric has 4 levels (max − min) / 3 apart, 0 among them",
    None: "a 2-bit grid spans the extreme weights in 3 or 4 levels (symmetric: {−s, 0, +s}, s = max|w|)"}
BEATS_BY = 0.01   # binary must score this much (a percentage point) above 2 bits for the note: not a tie at chance


def _binary_note(bits: Sequence[int], acc: Sequence[float], symmetric: bool | None) -> dict[str, Any] | None:
    """An arrow to the 2-bit point saying why 1 bit (binary, scaled) scores above it, when the curve says so; None
    otherwise. The box sits low, from the first bit width after which the curve stays above it (high if none)."""
    at = {int(b): float(a) for b, a in zip(bits, acc)}
    if 1 not in at or 2 not in at or not at[1] > at[2] + BEATS_BY:
        return None
    text = _wrap_words(f"Why 1 bit beats 2 here: {TWO_BIT_GRID[symmetric]}, so most weights, far smaller, round to 0. "
                       "Binary keeps every weight's sign, scaled by mean|w|.", 44)   # ~250 px wide
    top = 0.03 + (15 * (text.count("<br>") + 1) + 12) / 205 + 0.04   # the box's top (of a ~205 px plot) + a margin
    span = max(at) - 1 or 1
    start = next((b for b in sorted(at) if b >= 3 and all(a >= top for c, a in at.items() if c >= b)), None)
    low = start is not None and start - 1 <= 0.45 * span   # the box, half the plot wide, fits right of it
    return dict(x=2, y=at[2] * 100, axref="x", ayref="y", ax=start if low else 2 + 0.12 * span, ay=3 if low else 97,
                xanchor="left", yanchor="bottom" if low else "top", align="left", text=text, showarrow=True,
                arrowhead=2, arrowsize=1, arrowwidth=1, arrowcolor=DARK, standoff=6, font=dict(size=11, color=DARK),
                bgcolor="rgba(255,255,255,0.9)", bordercolor="#9ca3af", borderwidth=1, borderpad=4)


def similarity_heatmap(sim: np.ndarray, labels: Sequence[str], title: str = "Cosine similarity") -> go.Figure:
    """A square matrix of cosine similarities between sentences (shortened labels on both axes), -1 to 1."""
    short = [t if len(t) <= 38 else t[:36] + "…" for t in labels]
    heat = dict(type="heatmap", z=np.asarray(sim, dtype=float).round(3), x=list(range(len(short))), y=short,
                zmin=-1, zmax=1, colorscale="RdBu", reversescale=True, colorbar=dict(title="cosine"),
                customdata=[[b for b in short] for _ in short],
                hovertemplate="%{y}<br>%{customdata}<br>cosine %{z:.3f}<extra></extra>")
    return _figure([heat], title, "sentence (same order as the rows)", "", height=460,
                   yaxis=dict(autorange="reversed"))


def drop_heatmap(z: np.ndarray, rows: Sequence[str], cols: Sequence[str], title: str, x_title: str, y_title: str,
                 colorbar: str = "drop", text_format: str = "{:.4f}") -> go.Figure:
    """A grid of drops (for example 1 − mean cosine with one cell compressed alone): white at no drop, darkest red
    at the largest, each cell's value written in it; a missing cell (NaN) is left blank."""
    z = np.asarray(z, dtype=np.float64)
    finite = z[np.isfinite(z)]
    top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    text = [["" if not np.isfinite(v) else text_format.format(v) for v in row] for row in z]
    heat = dict(type="heatmap", z=np.where(np.isfinite(z), z, np.array(None)).tolist(), x=list(cols), y=list(rows),
                zmin=0, zmax=top, colorscale="Reds", text=text, texttemplate="%{text}", textfont=dict(size=12),
                colorbar=dict(title=dict(text=colorbar)), xgap=2, ygap=2,
                hovertemplate="%{y}, %{x}: %{text}<extra></extra>")
    return _figure([heat], title, x_title, y_title, height=max(300, 48 * len(rows) + 140),
                   xaxis=dict(type="category"), yaxis=dict(autorange="reversed", type="category"))
