"""The relay's pure decision rules: refusals by choice and cap, and report suppression."""

import pytest

from server.campaigns import suppress_small
from server.choices import RecipientState, refusal


@pytest.mark.parametrize(
    "state,category,expected",
    [
        (RecipientState(blocked=True), "utility", "blocked"),
        (RecipientState(promotions_stopped=True), "utility", None),
        (RecipientState(promotions_stopped=True), "marketing", "stopped_promotions"),
        (RecipientState(level="none"), "marketing", "marketing_level"),
        (RecipientState(level="chatted"), "marketing", "marketing_level"),
        (RecipientState(level="chatted", has_chatted=True), "marketing", None),
        (
            RecipientState(level="weekly", weekly_limit=3, marketing_last_7d=3),
            "marketing",
            "marketing_level",
        ),
        (RecipientState(level="weekly", weekly_limit=3, marketing_last_7d=1), "marketing", None),
        (RecipientState(marketing_last_24h=2), "marketing", "daily_cap"),
        (RecipientState(marketing_last_24h=2), "authentication", None),
    ],
)
def test_refusal_rules(state, category, expected):
    assert refusal(category, state, daily_cap=2) == expected


def test_a_lone_small_count_is_hidden_with_its_complement():
    counts = {"blocked": 6, "stopped_promotions": 0, "marketing_level": 1, "daily_cap": 9}
    shown = suppress_small(counts, 5)
    assert shown == {
        "blocked": None,
        "stopped_promotions": 0,
        "marketing_level": None,
        "daily_cap": 9,
    }
    assert suppress_small({"a": 7, "b": 0}, 5) == {"a": 7, "b": 0}
    assert suppress_small({"a": 2, "b": 3}, 5) == {"a": None, "b": None}
