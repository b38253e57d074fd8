"""A campaign's published figures and the business's privacy budget, in a marketer's words.

The relay says exactly what the business did and paid, and what people did only once per
campaign, with deliberate noise (docs/privacy-boundary.md, "What a business sees"). Each
figure reads as "about" its value, give or take its margin. The console and the app both
word them from here, so a marketer reads the same sentence in either.
"""

from collections.abc import Callable

from shared.api import Estimate, NoisyCount, PrivacyBudget

# Why a person's choices stopped a copy, as the refusal classes read to a marketer.
REASON_WORDS = {
    "blocked": "blocked",
    "stopped_promotions": "stopped promotions",
    "marketing_level": "marketing setting",
    "daily_cap": "daily limit",
}

FIGURES_NOTE = (
    "What people did is published once per campaign, some time after sending, with deliberate "
    "noise so that no figure gives away what one person did: read each as about its value, "
    "give or take its ± margin (95 % of the time), and small figures can even dip below zero. "
    "Outcomes are estimated among the reports that carry one; reports with no signal (people "
    "who turned signals off, or whose devices have spent what they ever report about your "
    "campaigns) are counted apart."
)
MONEY_NOTE = (
    "Every copy is charged when it is sent, whatever the person does with it; once the "
    "campaign's figures are published, a rebate gives back the copies they estimate were not "
    "delivered."
)


def reason_words(reason: str) -> str:
    return REASON_WORDS.get(reason, reason.replace("_", " "))


def about(count: NoisyCount, what: str = "") -> str:
    """``about 1,234 delivered (± 75)``. The value is shown as published, even below zero:
    clipping it would skew the figure, and its noise is what protects each person."""
    label = f" {what}" if what else ""
    return f"about {count.value:,}{label} (± {count.margin:,})"


def whole(value: float) -> int:
    """An estimate to the nearest person: a whole number, so a small one never reads "-0"."""
    return round(value)


def estimate(value: Estimate, what: str = "") -> str:
    """``about 702 read (661 to 743)``: an interaction estimate with its 95 % interval."""
    label = f" {what}" if what else ""
    return f"about {whole(value.value):,}{label} ({whole(value.low):,} to {whole(value.high):,})"


def epsilon(value: float) -> str:
    """A privacy cost as people read it: ``1.0``, ``0.6``, ``0.25``."""
    text = f"{value:.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def privacy_left(budget: PrivacyBudget, when: Callable[[int], str]) -> str:
    """``0.6 of 1.0 left this 30 days — 3 more campaign reports``: the privacy budget, after a
    "privacy budget:" label."""
    head = f"{epsilon(budget.remaining)} of {epsilon(budget.epsilon_30d)} left this 30 days"
    if budget.campaigns_left:
        plural = "s" if budget.campaigns_left != 1 else ""
        return f"{head} — {budget.campaigns_left} more campaign report{plural}"
    if budget.renews_at is not None:
        renews = when(budget.renews_at)
        return f"{head} — new campaign reports wait until it renews, at about {renews}"
    return f"{head} — no more campaign reports for now"


def privacy_note(budget: PrivacyBudget) -> str:
    return (
        f"Each campaign's report costs {epsilon(budget.per_campaign)} of it; what a report "
        "spends comes back 30 days after it was published."
    )
