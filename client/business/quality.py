"""What a business is told of its quality (GET /v1/quality), in words, for the console and the
app alike: its rating and marketing tier, and how many people its marketing may still reach."""

from typing import Any


def business_line(found: dict[str, Any]) -> str:
    """``"your business medium; tier 1 of 5: …; 247 of 250 people left in 24 hours"``."""
    business = found["business"]
    limit = business["limit_24h"]
    left = (
        "no limit on the people it reaches"
        if limit is None
        else f"{max(0, limit - business['used_24h']):,} of {limit:,} people left in 24 hours"
        + ("" if business["enforced"] else " (not enforced by this relay)")
    )
    return f"your business {business['note']}; {left}"


def template_line(found: dict[str, Any], template_id: str) -> str | None:
    """The template's rating and any pause, with why; None if the relay does not list it."""
    for entry in found["templates"]:
        if entry["template_id"] == template_id:
            return f"template {entry['name']}: {entry['note']}"
    return None
