"""A mailbox item as its delivery stream sends it: one server-sent event, rendered once.

Each pushed envelope used to become two pydantic models (built field by field in Python) and
then JSON: a third of what storing a batch cost. The frame is written here straight from the
stored columns instead. Every column was validated on the way in (ids and handles match their
patterns, kinds and categories are fixed words, the ciphertext is base64), so none needs
escaping; a test holds the bytes equal to ``MailboxItem.model_dump_json()``.
"""

from dataclasses import dataclass
from typing import Any

from shared.encoding import b64encode


@dataclass(frozen=True, slots=True)
class Frame:
    """One envelope's SSE event; ``seq`` is its mailbox number."""

    seq: int
    data: bytes


def _json(value: str | int | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    return f'"{value}"'


def render(
    seq: int,
    msg_id: str,
    sender: str,
    recipient: str,
    kind: str,
    category: str,
    template_id: str | None,
    campaign_id: str | None,
    not_before: int | None,
    expires_at: int | None,
    ciphertext: bytes,
) -> Frame:
    """The frame of one stored envelope."""
    item = (
        f'{{"seq":{seq},"envelope":{{"v":1,"id":"{msg_id}","sender":"{sender}",'
        f'"recipient":"{recipient}","kind":"{kind}","category":"{category}",'
        f'"template_id":{_json(template_id)},"campaign_id":{_json(campaign_id)},'
        f'"not_before":{_json(not_before)},"expires_at":{_json(expires_at)},'
        f'"ciphertext":"{b64encode(ciphertext)}"}}}}'
    )
    return Frame(seq, b"id: %d\nevent: envelope\ndata: %s\n\n" % (seq, item.encode()))


def from_row(row: Any) -> Frame:
    """The frame of a row read with the envelope's columns (server/mailbox.py)."""
    return render(
        row.seq,
        row.msg_id,
        row.sender,
        row.recipient,
        row.kind,
        row.category,
        row.template_id,
        row.campaign_id,
        row.not_before,
        row.expires_at,
        row.ciphertext,
    )


def from_stored(row: dict[str, Any], seq: int) -> Frame:
    """The frame of a row just stored (no database read)."""
    return render(
        seq,
        row["msg_id"],
        row["sender"],
        row["recipient"],
        row["kind"],
        row["category"],
        row["template_id"],
        row["campaign_id"],
        row["not_before"],
        row["expires_at"],
        row["ciphertext"],
    )
