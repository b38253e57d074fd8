"""The person's marketing choices, applied on the device to copies the relay cannot judge.

The relay applies block, stop-promotions, the marketing level and the daily cap by a copy's
category, and never sees a variable. So a utility or authentication copy whose *rendered* text
promotes reaches the person as if it were not marketing. On the device it is marketing all the
same (DESIGN: "misclassifying must never pay"): it is labelled so, and the same choices are
applied here, to what the device knows itself: the person's own choices (``GET /v1/prefs``),
whether they ever wrote to the business, and how many marketing copies it showed them in the
last day and week (its local store). A copy they would have refused is held back like a
quarantined one, with reason ``hidden_by_choice`` and a sentence saying why.

Fetching the choices tells the relay nothing it could not work out itself: whether a copy
promotes depends only on its text, which its sender wrote.
"""

import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass

from sqlmodel import col, or_, select

from client.relay_api import RelayAPI
from client.store import LocalStore, StoredMessage
from shared.api import Preferences
from shared.choices import RecipientState, refusal

# The platform-wide cap of marketing copies per person per rolling 24 h. The relay's is a
# setting (RelaySettings.marketing_cap_24h) it does not publish; this is its default.
DAILY_CAP = 2
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
# The choices the relay last gave are used for this long before asking again: a flood of
# promoting copies costs one request, not one each. A choice made on this device refreshes
# them at once (client/relay_api.py), so only one made on another device can be this late.
PREFERENCES_FRESH_S = 60.0
# Marketing copies shown but maybe not in the store yet (a sync stores its page in one
# transaction, after rendering all of it): enough for the largest page, with room.
_PENDING_MAX = 5_000


@dataclass(frozen=True)
class MarketingSeen:
    """What the device knows of the person and one business, besides their choices."""

    wrote_to_business: bool
    last_24h: int  # marketing copies shown in the last 24 hours, from any business
    last_7d: int


def relabel(category: str) -> str:
    """The label of a ``category`` copy whose text promotes."""
    return f"Marketing (promotional text in {_a(category)} message)"


def hide_reason(
    category: str,
    business: str,
    prefs: Preferences,
    seen: MarketingSeen,
    daily_cap: int = DAILY_CAP,
) -> str | None:
    """Why a promoting ``category`` copy from ``business`` is hidden, or None to show it.

    The relay's own rules for marketing (shared/choices.py), put in words.
    """
    state = RecipientState(
        blocked=business in prefs.blocked,
        promotions_stopped=business in prefs.promotions_stopped,
        level=prefs.level,
        weekly_limit=prefs.weekly_limit,
        has_chatted=seen.wrote_to_business,
        marketing_last_24h=seen.last_24h,
        marketing_last_7d=seen.last_7d,
    )
    reason = refusal("marketing", state, daily_cap)
    if reason is None:
        return None
    if reason == "blocked":
        why = f"you blocked {business}"
    elif reason == "stopped_promotions":
        why = f"you stopped promotions from {business}"
    elif reason == "daily_cap":
        why = (
            f"you had {seen.last_24h} marketing message(s) in the last 24 hours, the daily "
            f"cap is {daily_cap}"
        )
    elif prefs.level == "weekly":
        why = (
            f"you had {seen.last_7d} marketing message(s) in the last 7 days, your weekly "
            f"limit is {prefs.weekly_limit or 0}"
        )
    elif prefs.level == "chatted":
        why = f"your marketing level is 'chatted' and you never wrote to {business}"
    else:
        why = f"your marketing level is '{prefs.level}'"
    return f"hidden: promotional text in {_a(category)} message, and {why}"


def _a(category: str) -> str:
    return ("an " if category == "authentication" else "a ") + category


# --- what the device counted ------------------------------------------------------------------

_pending: "weakref.WeakKeyDictionary[LocalStore, OrderedDict[str, int]]" = (
    weakref.WeakKeyDictionary()
)


def note_shown(store: LocalStore, msg_id: str, at_ms: int) -> None:
    """Count a marketing copy (labelled so by its category or by its text) as shown at
    ``at_ms``, before the store has it."""
    shown = _pending.setdefault(store, OrderedDict())
    shown[msg_id] = at_ms
    while len(shown) > _PENDING_MAX:
        shown.popitem(last=False)


def marketing_seen(store: LocalStore, business: str, now_ms: int) -> MarketingSeen:
    """Marketing copies shown in the last day and week (stored verified ones, and those noted
    by :func:`note_shown` and not stored yet), and whether the person wrote to ``business``."""
    since = now_ms - WEEK_MS
    with store.session() as s:
        stored = dict(
            s.exec(
                select(StoredMessage.msg_id, StoredMessage.received_at).where(
                    StoredMessage.direction == "in",
                    StoredMessage.status == "verified",
                    col(StoredMessage.received_at) > since,
                    or_(
                        StoredMessage.category == "marketing",
                        col(StoredMessage.label).startswith("Marketing"),
                    ),
                )
            ).all()
        )
    times = {**{m: at for m, at in stored.items() if at is not None}, **_pending.get(store, {})}
    return MarketingSeen(
        wrote_to_business=store.has_outgoing(business),
        last_24h=sum(1 for at in times.values() if at > now_ms - DAY_MS),
        last_7d=sum(1 for at in times.values() if at > since),
    )


async def current_choices(api: RelayAPI) -> Preferences:
    """The person's choices: as the relay last gave them if that was recent, else asked anew.
    A relay that cannot answer now raises, and the copy waits for the next sync."""
    known = api.known_preferences
    if known is not None and time.monotonic() - known[0] < PREFERENCES_FRESH_S:
        return known[1]
    return await api.preferences()


async def judge(
    api: RelayAPI, store: LocalStore, business: str, category: str, now_ms: int
) -> str | None:
    """Why a promoting non-marketing copy from ``business`` is hidden, or None to show it (as
    marketing: the caller then counts it with :func:`note_shown`)."""
    prefs = await current_choices(api)
    return hide_reason(category, business, prefs, marketing_seen(store, business, now_ms))
