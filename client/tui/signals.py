"""Which campaigns an interaction in the app concerns (the signal agent does the rest).

The app only notes events on the pending report of a campaign (``SignalAgent.record``); the
report itself leaves later, noised, delayed and on the anonymous channel.
"""

from collections.abc import Iterable

from client.store import StoredMessage


def campaign_of(message: StoredMessage | None) -> str | None:
    """The campaign of a genuine campaign copy; None for anything else."""
    if message is None or message.status != "verified" or message.kind != "template":
        return None
    return message.campaign_id


def shown_campaigns(messages: Iterable[StoredMessage]) -> list[str]:
    """The campaigns of the messages a view shows, each once, oldest first."""
    return list(dict.fromkeys(c for m in messages if (c := campaign_of(m))))
