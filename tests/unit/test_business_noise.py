"""The central noise a business's figures get (server/noise.py, server/figures.py) and the
accountant that bounds its sum (server/accountant.py), checked as a researcher would: by the
distributions the mechanism produces, not by reading its code."""

import math
from collections import Counter

import pytest
from sqlmodel import Session, SQLModel, create_engine

from server import accountant, noise
from server.figures import OUTCOME_SENSITIVITY, TALLY_SENSITIVITY, _estimates
from server.settings import RelaySettings

DAY = 86_400_000


def test_the_margin_holds_95_percent_of_the_noise():
    scale = noise.scale_for(OUTCOME_SENSITIVITY, 0.1)
    half = noise.margin(scale)
    draws = noise.noisy_counts([0] * 10_000, OUTCOME_SENSITIVITY, 0.1)  # each cell its own draw
    inside = sum(abs(x) <= half for x in draws) / 10_000
    assert 0.93 <= inside <= 0.97


def test_every_published_count_of_a_10000_campaign_is_within_2_percent_at_the_defaults():
    defaults = RelaySettings(db="sqlite://")
    counts = noise.scale_for(OUTCOME_SENSITIVITY, defaults.figures_epsilon_counts)
    tallies = noise.scale_for(TALLY_SENSITIVITY, defaults.figures_epsilon_interactions)
    margins = [
        noise.margin(counts),  # delivered, each reason, not delivered
        noise.sum_margin(counts, 4),  # refused: the sum of the four reasons
        noise.margin(tallies),  # the report count
    ]
    assert max(margins) <= 200, margins
    # And the whole release fits the budget five times over 30 days.
    per_campaign = defaults.figures_epsilon_counts + defaults.figures_epsilon_interactions
    assert defaults.business_epsilon_30d / per_campaign >= 5 - 1e-9


def test_neighbouring_worlds_are_no_more_than_e_to_the_epsilon_apart():
    # One person moves one copy from "delivered" to "refused": the counts differ by one in
    # two cells. For every outcome the business could see, the likelihood ratio of the two
    # worlds stays within e^epsilon (checked on the observed frequencies of the first cell).
    epsilon, trials = 0.1, 40_000
    # Each cell of one long vector gets its own draw: one call stands for ``trials`` releases.
    world0 = Counter(
        x // 20 for x in noise.noisy_counts([1] * trials, OUTCOME_SENSITIVITY, epsilon)
    )
    world1 = Counter(
        x // 20 for x in noise.noisy_counts([0] * trials, OUTCOME_SENSITIVITY, epsilon)
    )
    for bucket in set(world0) & set(world1):
        if min(world0[bucket], world1[bucket]) >= 2_000:  # enough draws to read a ratio
            ratio = world0[bucket] / world1[bucket]
            assert math.exp(-epsilon) * 0.85 <= ratio <= math.exp(epsilon) * 1.15


def test_the_mechanism_refuses_a_claim_it_cannot_back():
    with pytest.raises(ValueError):
        noise.scale_for(0, 0.1)
    with pytest.raises(ValueError):
        noise.scale_for(2, 0)


def test_estimates_are_unbiased_and_unclipped():
    # 1,200 reports, none clicked, and randomized response reported clicks a little less
    # often than chance: the estimate goes below zero rather than being clipped, and its
    # interval, which holds both noises, still holds the truth.
    found = _estimates([30, 500, 300, 180, 220], noise.scale_for(1, 0.1))
    assert found["clicked"].value < 0 < found["clicked"].high
    assert sum(e.value for e in found.values()) == pytest.approx(1200, abs=0.5)


@pytest.fixture
def session():
    engine = create_engine("sqlite://")
    SQLModel.metadata.create_all(engine)
    with Session(engine) as s:
        yield s


def test_the_accountant_stops_at_the_budget_and_renews_after_30_days(session):
    spent = [accountant.try_spend(session, "acme", f"c{i}", 0.2, 1.0, i) for i in range(6)]
    assert spent == [True] * 5 + [False]
    assert accountant.spent_micro(session, "acme", 10) == 1_000_000
    assert accountant.try_spend(session, "other", "x", 0.2, 1.0, 10)  # budgets are per business
    view = accountant.view(session, "acme", 1.0, 0.2, 10)
    assert (view.remaining, view.campaigns_left, view.renews_at) == (0.0, 0, 30 * DAY)
    need = accountant.to_micro(0.2)
    assert accountant.renewal(session, "acme", need, 1_000_000, 10) == 30 * DAY
    assert accountant.try_spend(session, "acme", "late", 0.2, 1.0, 30 * DAY + 1)
