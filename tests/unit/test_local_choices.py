"""The person's marketing choices applied on the device to promoting non-marketing copies: the
same rules, in the same order, as the relay's for marketing (shared/choices.py)."""

import pytest

from client.local_choices import MarketingSeen, hide_reason, relabel
from shared.api import Preferences
from shared.choices import RecipientState, refusal

SEEN = MarketingSeen(wrote_to_business=False, last_24h=0, last_7d=0)


def prefs(**fields) -> Preferences:
    base = {"level": "all", "weekly_limit": None, "blocked": [], "promotions_stopped": []}
    return Preferences(**(base | fields))


@pytest.mark.parametrize(
    ("choices", "seen", "why"),
    [
        (prefs(), SEEN, None),
        (prefs(blocked=["acme"]), SEEN, "you blocked acme"),
        (prefs(promotions_stopped=["acme"]), SEEN, "you stopped promotions from acme"),
        (prefs(promotions_stopped=["other"]), SEEN, None),
        (prefs(level="none"), SEEN, "your marketing level is 'none'"),
        (
            prefs(level="chatted"),
            SEEN,
            "your marketing level is 'chatted' and you never wrote to acme",
        ),
        (prefs(level="chatted"), MarketingSeen(True, 0, 0), None),
        (
            prefs(level="weekly", weekly_limit=3),
            MarketingSeen(False, 1, 3),
            "you had 3 marketing message(s) in the last 7 days, your weekly limit is 3",
        ),
        (prefs(level="weekly", weekly_limit=3), MarketingSeen(False, 1, 2), None),
        (
            prefs(),
            MarketingSeen(False, 2, 2),
            "you had 2 marketing message(s) in the last 24 hours, the daily cap is 2",
        ),
        (prefs(), MarketingSeen(False, 1, 9), None),
        # The first rule that refuses gives the reason, as on the relay.
        (
            prefs(level="none", promotions_stopped=["acme"]),
            MarketingSeen(False, 5, 5),
            "you stopped promotions from acme",
        ),
    ],
)
def test_the_persons_choices_hide_a_promoting_copy(choices, seen, why):
    reason = hide_reason("utility", "acme", choices, seen)
    if why is None:
        assert reason is None
    else:
        assert reason == f"hidden: promotional text in a utility message, and {why}"
    # Whatever the device decides, the relay decides the same for a marketing copy.
    state = RecipientState(
        blocked="acme" in choices.blocked,
        promotions_stopped="acme" in choices.promotions_stopped,
        level=choices.level,
        weekly_limit=choices.weekly_limit,
        has_chatted=seen.wrote_to_business,
        marketing_last_24h=seen.last_24h,
        marketing_last_7d=seen.last_7d,
    )
    assert (refusal("marketing", state, daily_cap=2) is None) == (reason is None)


def test_labels():
    assert relabel("utility") == "Marketing (promotional text in a utility message)"
    assert relabel("authentication") == (
        "Marketing (promotional text in an authentication message)"
    )
    assert hide_reason("authentication", "acme", prefs(level="none"), SEEN) == (
        "hidden: promotional text in an authentication message, and your marketing level is 'none'"
    )
