"""The reports a run's relay received, decoded: what several attacks read."""

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sealpost.audit.recorder import Exchange
from shared.shuffled import REPORTS_PATH, SHUFFLED_PATH
from shared.signals import InvalidReport, SignalReport, decode_report

# Where a report can reach the relay: the shuffler's batches, or straight (the old channel).
REPORT_PATHS = (SHUFFLED_PATH, "/v1/signals")


@dataclass(frozen=True)
class Received:
    """One report as it arrived: decoded, with the request that carried it."""

    report: SignalReport
    raw: str
    exchange: Exchange


def reports_in(ex: Exchange) -> list[str]:
    """The report strings a request's body carries (a batch, or one report to the shuffler),
    whatever its path: empty when the body is not such JSON."""
    try:
        body = json.loads(ex.body)
    except ValueError:
        return []
    if not isinstance(body, dict):
        return []
    found = body.get("reports") if ex.path != REPORTS_PATH else [body.get("report")]
    return [r for r in found or [] if isinstance(r, str)]


def received(exchanges: Sequence[Exchange], paths: Sequence[str] = REPORT_PATHS) -> list[Received]:
    """Every decodable report in POST requests to ``paths``, in arrival order."""
    found = []
    for ex in exchanges:
        if ex.method != "POST" or ex.path not in paths:
            continue
        for raw in reports_in(ex):
            try:
                found.append(Received(decode_report(raw.encode()), raw, ex))
            except InvalidReport:
                continue
    return found


def counted_reports(exchanges: Sequence[Exchange]) -> list[Received]:
    """The reports the relay accepted: those of shuffler batches it answered 200 (a refused
    one, e.g. a spent token, is in there too; the caller matches by token)."""
    return [r for r in received(exchanges, (SHUFFLED_PATH,)) if r.exchange.status == 200]
