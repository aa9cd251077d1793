"""Plot builders drawn by Plotly.js in headless Chromium, where a figure's JSON cannot say what the reader sees."""
import pytest
from plotly.offline import get_plotlyjs

import slimcore
from slimcore import plots

pytestmark = pytest.mark.browser


def test_the_drawn_digit_is_square_in_a_real_browser(page, tmp_path):
    """Plotly.js draws the one-example gallery (the Distillation page's) as wide as a quarter page: the image's x and
    y axes come out the same number of pixels long."""
    s = slimcore.load_sample("digits-cnn")
    fig = plots.example_gallery(s.test.x[:1].numpy(), [0], [0], [1.0], cols=1)
    html = tmp_path / "gallery.html"
    html.write_text(f"<html><head><script>{get_plotlyjs()}</script></head><body><div id=g style='width:320px'></div>"
                    f"<script>var f = {fig.to_json()}; Plotly.newPlot('g', f.data, f.layout)"
                    ".then(() => window.drawn = true);</script></body></html>")
    page.goto(html.as_uri())
    page.wait_for_function("window.drawn === true")
    x, y = page.evaluate("() => { const l = document.getElementById('g')._fullLayout;"
                         " return [l.xaxis._length / (l.xaxis.range[1] - l.xaxis.range[0]),"
                         "         l.yaxis._length / (l.yaxis.range[1] - l.yaxis.range[0])]; }")
    assert x == pytest.approx(y, rel=0.01) and x > 5   # pixels per image pixel, alike across and down
