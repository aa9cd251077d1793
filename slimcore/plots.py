"""Plot builders: pure functions from plain data (arrays, records) to Plotly figures. No model runs here."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

DARK = "#1f2937"
KEPT = "#2563eb"
REMOVED = "#dc2626"


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 320) -> go.Figure:
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, height=height, margin=dict(l=50, r=20, t=50, b=45),
                      legend=dict(orientation="h", y=-0.25), bargap=0.02)
    return fig


def weight_histogram(values: np.ndarray, title: str = "Weights", threshold: float | None = None,
                     after: np.ndarray | None = None, bins: int = 80) -> go.Figure:
    """Histogram of weight values; optionally the values after compression overlaid and +-threshold lines drawn."""
    values = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    edges = np.linspace(lo, hi if hi > lo else lo + 1e-6, bins + 1)
    fig = go.Figure()
    counts, _ = np.histogram(values, edges)
    centers = (edges[:-1] + edges[1:]) / 2
    fig.add_bar(x=centers, y=counts, name="before", marker_color=KEPT, opacity=0.55 if after is not None else 0.9)
    if after is not None:
        after = np.asarray(after, dtype=np.float64).ravel()
        c2, _ = np.histogram(after, edges)
        fig.add_bar(x=centers, y=c2, name="after", marker_color=REMOVED, opacity=0.6)
        fig.update_layout(barmode="overlay")
    if threshold is not None and threshold > 0:
        for t in (-threshold, threshold):
            fig.add_vline(x=t, line_dash="dash", line_color=DARK)
        fig.add_annotation(x=threshold, y=1, yref="paper", text=f"|w| = {threshold:.3g}", showarrow=False,
                           xanchor="left", yanchor="top")
    return _layout(fig, title, "weight value", "count")


def layer_bars(names: Sequence[str], values: Sequence[float], title: str, axis: str) -> go.Figure:
    """One bar per layer (parameters, MACs, sparsity, ...)."""
    fig = go.Figure(go.Bar(x=list(names), y=list(values), marker_color=KEPT,
                           hovertemplate="%{x}: %{y:,}<extra></extra>"))
    return _layout(fig, title, "layer", axis, height=280)


def example_gallery(inputs: np.ndarray, labels: Sequence[int], preds: Sequence[int], confidences: Sequence[float],
                    cols: int = 6) -> go.Figure:
    """Test inputs with true label and the model's prediction: 2-D inputs as images, 1-D inputs as signals."""
    inputs = np.asarray(inputs)
    n = len(inputs)
    rows = max(1, math.ceil(n / cols))
    titles = [f"{'✓' if p == y else '✗'} pred {p} ({c:.0%}) · true {y}" for y, p, c in zip(labels, preds, confidences)]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.03, vertical_spacing=0.12)
    for i, x in enumerate(inputs):
        r, c = divmod(i, cols)
        x = np.squeeze(x)
        if x.ndim == 2:
            fig.add_trace(go.Heatmap(z=x[::-1], colorscale="Greys", showscale=False, hoverinfo="skip"), r + 1, c + 1)
        else:
            fig.add_trace(go.Scatter(y=x, mode="lines", line=dict(color=KEPT if preds[i] == labels[i] else REMOVED),
                                     hoverinfo="skip"), r + 1, c + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_annotations(font_size=11)
    fig.update_layout(height=170 * rows + 40, margin=dict(l=10, r=10, t=40, b=10), showlegend=False)
    return fig
