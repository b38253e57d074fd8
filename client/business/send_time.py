"""When a campaign is sent, as people write it: the same words in the app and the console."""

from datetime import datetime


def parse_send_at(text: str | None) -> int | None:
    """``now`` (or nothing) is None, "send at once"; ``2026-12-01T09:00`` is that moment in
    local time unless it names a zone, as unix ms. Anything else is a ValueError that says
    what to write."""
    text = (text or "").strip()
    if not text or text.lower() == "now":
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(
            f"'{text}' is not a time; write now, or e.g. 2026-12-01T09:00 (local time) or "
            "2026-12-01T09:00+01:00"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.astimezone()  # a naive time means the user's local time
    return int(moment.timestamp() * 1000)
