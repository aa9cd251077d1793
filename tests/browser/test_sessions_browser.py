"""Two people on one server at once, in real headless Chromium: each moves the Pruning lab's slider on a different
model, and each sees only the figures of their own model and ratio."""
import pytest
from playwright.sync_api import expect

from slimcore import pruning as P
from tests.browser.helpers import expect_metric, wait_idle
from tests.conftest import load_classifier

pytestmark = pytest.mark.browser

PEOPLE = [("digits-mlp", 0.30, +25), ("digits-cnn", 0.70, -25)]  # model, ratio in the link, arrow presses


def _figures(name: str, ratio: float) -> tuple[str, str]:
    s = load_classifier(name)
    r = P.evaluate(s.model, P.PruneConfig(round(ratio, 2)), s.test)[0]
    return f"{r.nonzeros:,}", f"{r.score.value:.2%}"


def test_two_sessions_moving_sliders_at_once_see_only_their_own(server, browser):
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1800}) for _ in PEOPLE]
    try:
        pages = [c.new_page() for c in contexts]
        for pg, (name, ratio, _) in zip(pages, PEOPLE):  # both load before either is waited for: the runs overlap
            pg.set_default_timeout(60_000)
            pg.goto(f"{server}/Pruning?model={name}&prune_ratio={ratio:.2f}", wait_until="commit")
        for pg, (name, ratio, _) in zip(pages, PEOPLE):
            nonzeros, _acc = _figures(name, ratio)
            expect_metric(pg, "Non-zero parameters", nonzeros)
            wait_idle(pg)
        thumbs = [pg.get_by_role("slider").first for pg in pages]
        for step in range(max(abs(n) for *_, n in PEOPLE)):  # the two move their sliders in turns, press by press
            for pg, thumb, (_, ratio, presses) in zip(pages, thumbs, PEOPLE):
                if step < abs(presses):
                    sign = 1 if presses > 0 else -1
                    try:
                        thumb.focus()
                    except Exception as e:   # say what the page showed instead of its slider
                        raise AssertionError(f"no slider at press {step}: {pg.url}\n"
                                             f"{pg.locator('[data-testid=stApp]').inner_text()[:3000]}") from e
                    # each press goes to a slider showing the value so far, and lands before the next one (the page's
                    # rerun for it may still run while the other person presses): "0.31", "0.3" as JS writes numbers
                    expect(thumb).to_have_value(str(round(ratio + step * sign / 100, 2)))
                    thumb.press("ArrowRight" if sign > 0 else "ArrowLeft")
                    expect(thumb).to_have_value(str(round(ratio + (step + 1) * sign / 100, 2)))
        for pg, (name, ratio, presses) in zip(pages, PEOPLE):
            end = ratio + presses / 100
            nonzeros, acc = _figures(name, end)
            expect_metric(pg, "Non-zero parameters", nonzeros)
            expect_metric(pg, "Test accuracy", acc)
            wait_idle(pg)
            expect(pg.get_by_role("slider").first).to_have_value(f"{end:.2f}")
            assert f"prune_ratio={end:.2f}" in pg.url and f"model={name}" in pg.url
            assert pg.locator("text=Traceback").count() == 0
    finally:
        for c in contexts:
            c.close()
