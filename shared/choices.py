"""A person's choices about marketing: the rules the relay applies at release time, and the
device applies to a non-marketing copy whose text promotes (client/local_choices.py)."""

from dataclasses import dataclass

from shared.api import RefusalClass


@dataclass(frozen=True)
class RecipientState:
    """What the relay knows of one person when it releases a message from one business."""

    blocked: bool = False
    promotions_stopped: bool = False
    level: str = "all"
    weekly_limit: int | None = None
    has_chatted: bool = False
    marketing_last_24h: int = 0
    marketing_last_7d: int = 0


def refusal(category: str, state: RecipientState, daily_cap: int) -> RefusalClass | None:
    """Why this message must not be delivered, or None. Utility and authentication messages
    are stopped only by a block; marketing by any choice and by the platform-wide cap."""
    if state.blocked:
        return "blocked"
    if category != "marketing":
        return None
    if state.promotions_stopped:
        return "stopped_promotions"
    if state.level == "none":
        return "marketing_level"
    if state.level == "chatted" and not state.has_chatted:
        return "marketing_level"
    if state.level == "weekly" and state.marketing_last_7d >= (state.weekly_limit or 0):
        return "marketing_level"
    if state.marketing_last_24h >= daily_cap:
        return "daily_cap"
    return None
