"""``GET /{waba-id}/template_analytics``, filled from Sealpost's published campaign figures.

The Cloud API counts per template and day: sent, delivered, read, clicked. Here ``sent`` is
exact (what the business did and paid), while every figure about people comes from a
campaign's figures, published once, some days after sending, with differentially private
noise: ``delivered``, ``read`` and ``clicked`` are those noisy estimates, rounded, and absent
until published. What WhatsApp reports per message (131049 and 131050, a person's opt-out)
is here only ``sealpost.refused``, an aggregate as noisy as the rest.
"""

import json
from datetime import UTC, datetime
from typing import Any

from client.business.figures import whole
from client.relay_api import RelayAPI
from shared.api import CampaignReport


def _day_start(ms: int) -> int:
    day = datetime.fromtimestamp(ms / 1000, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return int(day.timestamp())


def _ids(text: str | None) -> list[str]:
    """``template_ids`` as the Cloud API takes it: a JSON list, or comma-separated."""
    if not text:
        return []
    try:
        found = json.loads(text)
    except ValueError:
        found = text.split(",")
    return [str(t).strip() for t in (found if isinstance(found, list) else [found]) if str(t)]


def data_point(report: CampaignReport) -> dict[str, Any]:
    start = _day_start(report.send_at)
    point: dict[str, Any] = {
        "template_id": report.template_id,
        "start": start,
        "end": start + 86_400,
        "sent": report.sent,
    }
    figures = report.figures
    sealpost: dict[str, Any] = {"campaign_id": report.id, "figures_published": figures is not None}
    if figures is None:
        sealpost["note"] = report.figures_note
        sealpost["figures_at"] = report.figures_at // 1000
    else:
        read = figures.interactions.get("read")
        clicked = figures.interactions.get("clicked")
        point["delivered"] = figures.delivered.value
        if read is not None and clicked is not None:
            # A click is also a read: WhatsApp counts read messages, clicks among them.
            point["read"] = whole(read.value + clicked.value)
        if clicked is not None:
            point["clicked"] = [
                {"type": "any_button", "button_content": "", "count": whole(clicked.value)}
            ]
        sealpost |= {
            "epsilon": figures.epsilon,
            "delivered_margin": figures.delivered.margin,
            "refused": figures.refused.value,
            "refused_margin": figures.refused.margin,
            "signal_reports": figures.signal_reports.value,
            "rebate": figures.rebate,
        }
    point["sealpost"] = sealpost
    return point


async def template_analytics(
    api: RelayAPI,
    template_ids: str | None,
    start: int | None,
    end: int | None,
) -> dict[str, Any]:
    wanted = set(_ids(template_ids))
    points = []
    for report in (await api.campaigns()).campaigns:
        if wanted and report.template_id not in wanted:
            continue
        at = report.send_at // 1000
        if (start is not None and at < start) or (end is not None and at >= end):
            continue
        points.append(data_point(report))
    points.sort(key=lambda p: (p["start"], p["template_id"]))
    return {
        "data": [{"granularity": "DAILY", "product_type": "cloud_api", "data_points": points}],
        "paging": {"cursors": {"before": "", "after": ""}},
    }
