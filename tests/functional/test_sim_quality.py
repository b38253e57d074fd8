"""The simulator shows the quality system at work, on a real relay with real clients: a
spammy business (people dismiss most of its marketing) is paused and then refused, a welcome
one sends as planned; and the figures that moved its rating are the published, noisy ones.
The comparison with and without the quality system at scale is `sealpost sim
--compare-quality` (docs/performance.md)."""

import pytest

from sealpost.sim.config import SimOptions
from sealpost.sim.runner import run_sim
from sealpost.sim.summary import render, summarize


@pytest.fixture(scope="module")
def spam_run():
    # Figures a day after each send (the reports are in by then) and less noisy than the
    # relay's defaults, so that 80 persons are enough for a rating's interval to speak.
    options = SimOptions(
        persons=80,
        businesses=2,
        days=4,
        campaigns=16,
        cap=10,
        figures_epsilon=3.0,
        figures_after_h=30,
        seed=3,
        accepts=0.8,
    )
    return summarize(run_sim(options))


def test_a_spammy_business_is_paused_and_refused_and_a_welcome_one_is_not(spam_run):
    assert spam_run["passed"], spam_run["failures"]
    assert spam_run["population"]["spammy"] == ["brio"]
    quality = spam_run["quality"]
    assert quality["enforced"] is True
    spammy, welcome = quality["businesses"]["brio"], quality["businesses"]["acme"]
    assert spammy["kind"] == "spammy" and welcome["kind"] == "welcome"
    # It fell to low on its published figures, and the relay refused what came next.
    assert spammy["lows"] >= 1 and spammy["template_rating"] == "low"
    assert set(spammy["campaigns_refused"]) <= {"template_paused", "template_disabled"}
    assert sum(spammy["campaigns_refused"].values()) >= 1
    assert spammy["campaigns_opened"] < spammy["campaigns_planned"]
    # Its share of unwelcome answers, as rated, is a lower bound above the threshold.
    low_day = next(d for d in spammy["days"] if d["template_rating"] == "low")
    assert low_day["share_low"] > 0.2
    # The welcome business never falls, and every campaign of it goes out.
    assert welcome["lows"] == 0 and welcome["campaigns_refused"] == {}
    assert welcome["campaigns_opened"] == welcome["campaigns_planned"]
    # People dismissed most of what the spammy business sent, little of the welcome one's.
    assert spammy["unwanted"]["dismissed_true"] > 0.5 * spammy["reach"]
    assert welcome["unwanted"]["dismissed_true"] < 0.3 * welcome["reach"]
    refused = [c for c in spam_run["campaigns"] if c["campaign_refused"]]
    assert refused and all(c["business"] == "brio" and c["delivered"] == 0 for c in refused)


def test_the_summary_shows_ratings_by_day(spam_run):
    text = render(spam_run)
    assert "Quality (what the relay did with what it learned)" in text
    assert "brio (spammy): template low" in text and "acme (welcome): template medium" in text
    assert "by day: d1:" in text
    assert "/paused" in text or "/disabled" in text
