"""The relay's pure decision rules: refusals by choice and cap, and report suppression."""

import pytest

from shared.choices import RecipientState, refusal


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
