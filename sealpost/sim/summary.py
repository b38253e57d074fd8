"""The simulation's summary: one JSON document, and the same content as text for people.

Deliveries are counted by the clients (``MessageStored`` events and the devices' stores);
what the relay released, refused and expired comes from its own database on the
simulation's relay (exact, per copy). On an existing relay there is no such record, and what
a business is told does not set refused copies apart (that would be about people), so those
counts are unknown there; a copy is lost if it still waits in its person's mailbox, as the
person's own client lists it, without having been stored. The campaign figures a business
sees are published once, with noise; they are set against the truth in ``analytics``.

``counts`` holds the figures a seed determines (planned, accepted, delivered, refused by
reason, charges, true outcomes, reports, no_signal reports); timings, the noisy figures, the
rebates that follow them and the estimates vary from run to run.
"""

import textwrap
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from client.business.money import format_amount
from sealpost.audit.report import text_table
from sealpost.audit.runner import SHUFFLER_BATCH
from sealpost.sim.analytics import business_figures, estimate_overview, estimate_rows
from sealpost.sim.played import Played
from sealpost.sim.quality import compare, quality_summary, render_comparison
from sealpost.sim.quality import render as render_quality
from sealpost.sim.runner import SimRun
from shared.api import REFUSAL_CLASSES
from shared.shuffle_bound import amplify
from shared.signals import DEFAULT_REPORT_EPSILON, NO_SIGNAL, OUTCOMES

SUMMARY_WIDTH = 80  # characters of a check's summary per line of text


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered)) - 1))]


def _sum(values: list[int | None]) -> int | None:
    """The total, or None when any part is unknown."""
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def _copies(played: Played) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Campaign copies end to end, in total and per campaign label."""
    log = played.log
    stored = {(s.handle, s.msg_id): s for s in log.stored.values() if s.campaign_id}
    label_of = {cid: label for label, cid in played.campaign_ids.items()}
    own = played.copies is not None
    per: dict[str, dict[str, Any]] = {}
    for campaign in played.plan.campaigns:
        run = played.runs.get(campaign.label)
        per[campaign.label] = {
            "business": played.plan.business(campaign.business).label,
            "day": campaign.day + 1,
            "send_at": _iso(campaign.send_at_ms),
            "audience": len(campaign.audience),
            "accepted": run.accepted if run else 0,
            "rejected_at_submission": dict(run.rejected) if run else {},
            # Unknown (None) on an existing relay: only its database tells them apart.
            "released": 0 if own else None,
            "delivered": 0,
            "refused_by_reason": dict.fromkeys(REFUSAL_CLASSES, 0) if own else None,
            "expired": 0 if own else None,
            "lost": 0,
            # Why the relay refused to open it (its template paused or disabled), if it did.
            "campaign_refused": played.refused_campaigns.get(campaign.label),
            # Filled in below for the campaigns the relay opened.
            "spend": 0,
            "charged": 0,
            "reports": 0,
            "status": "refused" if campaign.label in played.refused_campaigns else "-",
            "figures": "-",
        }
    misdelivered = 0
    for (handle, _), copy in stored.items():
        label = label_of.get(copy.campaign_id or "")
        if label is None:
            misdelivered += 1
            continue
        per[label]["delivered"] += 1
        variables = played.plan.campaign(label).variables.get(handle)
        # The right copy: verified, and personalised for this very person.
        if copy.status != "verified" or not variables or variables["name"] not in (copy.text or ""):
            misdelivered += 1
    unacked = 0
    if played.copies is not None:  # the own relay: every copy, exactly
        released = set()
        campaign_of = {row.msg_id: row.campaign_id for row in played.copies}
        for row in played.copies:
            label = label_of.get(row.campaign_id)
            if label is None:
                continue
            if row.state in ("pending", "acked"):
                released.add((row.recipient, row.msg_id))
                per[label]["released"] += 1
                unacked += row.state == "pending"
            elif row.state == "refused":
                reasons = per[label]["refused_by_reason"]
                reasons[row.refusal or "?"] = reasons.get(row.refusal or "?", 0) + 1
            elif row.state == "expired":
                per[label]["expired"] += 1
        for _, msg_id in released - set(stored):
            per[label_of[campaign_of[msg_id]]]["lost"] += 1
        misdelivered += len(set(stored) - released)
    else:  # an existing relay: what still waits in the persons' own mailboxes
        for handle, msg_id, cid in played.waiting or []:
            label = label_of.get(cid or "")
            if label is None:
                continue
            if (handle, msg_id) in stored:
                unacked += 1  # stored, its ack not through yet
            else:
                per[label]["lost"] += 1  # released, never stored
    refused: Counter[str] = Counter()
    for row in per.values():
        refused.update(row["refused_by_reason"] or {})
    rejected: Counter[str] = Counter()
    for row in per.values():
        rejected.update(row["rejected_at_submission"])
    charged = _charged(played)
    for label, cid in played.campaign_ids.items():
        report = played.reports.get(cid)
        per[label]["spend"] = report.spend if report else 0
        per[label]["charged"] = charged.get(cid, 0)
        per[label]["reports"] = played.reporters.get(cid, 0)
        per[label]["status"] = report.status if report else "-"
        per[label]["figures"] = report.figures_note if report else "-"
    totals = {
        "planned": sum(r["audience"] for r in per.values()),
        "submitted": sum(run.submitted for run in played.runs.values()),
        "accepted": sum(r["accepted"] for r in per.values()),
        "rejected_at_submission": dict(rejected),
        "released": _sum([r["released"] for r in per.values()]),
        "delivered": sum(r["delivered"] for r in per.values()),
        "refused": sum(refused.values()) if own else None,
        "refused_by_reason": (
            {r: refused.get(r, 0) for r in REFUSAL_CLASSES}
            | {r: n for r, n in refused.items() if r not in REFUSAL_CLASSES}
            if own
            else None
        ),
        "expired": _sum([r["expired"] for r in per.values()]),
        "unacked_at_end": unacked,
        "lost": sum(r["lost"] for r in per.values()),
        "duplicated": sum(1 for key in log.duplicates if key in stored),
        "misdelivered": misdelivered,
    }
    return totals, per


def _charged(played: Played) -> dict[str, int]:
    """Per campaign id, what its copies were charged when released (the ledger's charge
    lines): set by the run alone, unlike the spend, which the noisy rebate lowers."""
    charged: Counter[str] = Counter()
    for budget in played.budgets.values():
        for line in budget.ledger:
            if line.kind == "charge" and line.campaign_id:
                charged[line.campaign_id] += line.amount
    return dict(charged)


def _chats(played: Played) -> dict[str, Any]:
    log = played.log
    delivered = sum(key in log.stored for key in played.chats_sent)
    campaign_keys = {k for k, s in log.stored.items() if s.campaign_id}
    return {
        "sent": len(played.chats_sent) + played.chats_failed,
        "refused_at_send": played.chats_failed,
        "delivered": delivered,
        "lost": len(played.chats_sent) - delivered,
        "duplicated": sum(1 for key in log.duplicates if key not in campaign_keys),
    }


def _latency(played: Played) -> dict[str, Any]:
    samples = [
        1000 * (s.at - played.released_wall[s.campaign_id])
        for s in played.log.stored.values()
        if s.campaign_id in played.released_wall
    ]
    return {
        "from": "the relay releasing the campaign (own relay: its dispatcher pass; existing "
        "relay: the submission) to the copy committed in the person's client store",
        "samples": len(samples),
        "p50": _round(_percentile(samples, 0.50)),
        "p99": _round(_percentile(samples, 0.99)),
        "max": _round(max(samples, default=None)),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _spend(played: Played, delivered: int) -> dict[str, Any]:
    """Money: every copy charged at release; one rebate per campaign once its figures are
    published (from the noisy counts); cancellations given back."""
    currency = next((b.currency for b in played.budgets.values()), "")
    per_business: Counter[str] = Counter()
    refunded = rebates = 0
    for label, cid in played.campaign_ids.items():
        report = played.reports[cid]
        per_business[played.plan.business(played.plan.campaign(label).business).label] += (
            report.spend
        )
        refunded += report.refunded
        rebates += report.figures.rebate if report.figures else 0
    total = sum(per_business.values())
    return {
        "currency": currency,
        "total_micro": total,
        "total": format_amount(total, currency),
        "charged_micro": sum(_charged(played).values()),
        "refunded_micro": refunded,
        "rebates_micro": rebates,
        "per_business_micro": dict(sorted(per_business.items())),
        "cost_per_delivered_micro": total // delivered if delivered else None,
    }


def _privacy(played: Played) -> dict[str, Any]:
    """What each business's figures cost its privacy budget, from the published figures."""
    settings = played.relay_settings
    per: dict[str, dict[str, Any]] = {}
    for business in played.plan.businesses:
        mine = [
            played.reports[cid]
            for label, cid in played.campaign_ids.items()
            if played.plan.campaign(label).business == business.handle and cid in played.reports
        ]
        budget = played.budgets.get(business.handle)
        per[business.label] = {
            "campaigns": len(mine),
            "published": sum(r.figures is not None for r in mine),
            "withheld": sum(r.status == "withheld" for r in mine),
            "epsilon_spent": round(sum(r.figures.epsilon for r in mine if r.figures), 6),
            "epsilon_30d": budget.privacy.epsilon_30d if budget else None,
        }
    return {
        "figures_after_h": settings.figures_after_h if settings else None,
        "epsilon_per_campaign": round(
            settings.figures_epsilon_counts + settings.figures_epsilon_interactions, 6
        )
        if settings
        else None,
        "business_epsilon_30d": settings.business_epsilon_30d if settings else None,
        "figures_published": _iso(played.figures_published_ms)
        if played.figures_published_ms
        else None,
        "per_business": per,
    }


def _shuffling(played: Played) -> dict[str, Any]:
    """What shuffling adds to one report's local epsilon (amplification by shuffling,
    shared/shuffle_bound.py, as the shuffler states it): at its batch size B, and for the
    largest campaign's reports were they all in one batch (a report names its campaign, so
    its crowd is its campaign's reports in the batch)."""
    local = DEFAULT_REPORT_EPSILON
    largest = max(played.reporters.values(), default=0)
    at_batch = amplify(local, SHUFFLER_BATCH)
    return {
        "local_epsilon_per_report": round(local, 6),
        "batch": SHUFFLER_BATCH if played.own_relay else None,
        "central_epsilon_at_batch": round(at_batch.central_epsilon, 4),
        "amplified_at_batch": at_batch.amplified,
        "min_batch_for_bound": at_batch.min_reports,
        "largest_campaign_reports": largest,
        "central_epsilon_largest_campaign_one_batch": (
            round(amplify(local, largest).central_epsilon, 4) if largest else None
        ),
        "delta": at_batch.delta,
    }


def _analytics(played: Played) -> dict[str, Any]:
    rows = estimate_rows(played, business_figures(played))
    truth: Counter[str] = Counter()
    for counts in played.true_counts.values():
        truth.update({o: counts.get(o, 0) for o in OUTCOMES})
    published_no_signal = [
        report.figures.no_signal.value
        for report in played.reports.values()
        if report.figures is not None
    ]
    return {
        "epsilon_per_report": round(DEFAULT_REPORT_EPSILON, 4),
        "reports_sent": sum(played.reporters.values()),
        "reports_refused": played.reports_refused,
        "copies_without_token": len(played.tokens_missing),
        "no_signal": {
            "true": sum(c.get(NO_SIGNAL, 0) for c in played.true_counts.values()),
            "published": sum(published_no_signal) if published_no_signal else None,
        },
        **estimate_overview(rows),
        "true_outcomes": {o: truth.get(o, 0) for o in OUTCOMES},
        "shuffling": _shuffling(played),
        "estimates": rows,
    }


def summarize(run: SimRun) -> dict[str, Any]:
    """The whole summary as JSON-ready data."""
    played = run.played
    options = run.options
    copies, per_campaign = _copies(played)
    chats = _chats(played)
    analytics = _analytics(played)
    audit = run.audit.to_json()
    failures = []
    if copies["lost"] or chats["lost"]:
        failures.append(f"{copies['lost'] + chats['lost']} message(s) lost")
    if copies["duplicated"] or chats["duplicated"]:
        failures.append(f"{copies['duplicated'] + chats['duplicated']} message(s) duplicated")
    if copies["misdelivered"]:
        failures.append(f"{copies['misdelivered']} copy(ies) misdelivered or quarantined")
    if run.audit.passed is False:
        failed = [c["name"] for c in audit["checks"] if not c["passed"]]
        failures.append(f"privacy audit failed: {', '.join(failed)}")
    requests = run.audit.traffic.get("requests")
    week = played.week_wall_s
    spend = _spend(played, copies["delivered"])
    privacy = _privacy(played)
    return {
        "passed": not failures,
        "failures": failures,
        "options": options.to_json(),
        "relay": {
            "url": played.relay_url,
            "own": played.own_relay,
            "marketing_cap_24h": options.effective_cap if played.own_relay else None,
            "figures_after_h": privacy["figures_after_h"],
            "epsilon_per_campaign": privacy["epsilon_per_campaign"],
            "business_epsilon_30d": privacy["business_epsilon_30d"],
            "cpu_s": _round(run.relay_cpu_s),
        },
        "virtual_time": {
            "start": _iso(played.plan.start_ms),
            "end": _iso(played.plan.end_ms),
            "days": options.days,
            "figures_published": privacy["figures_published"],
        },
        "population": played.plan.describe(),
        "messages": {
            "sent": copies["submitted"] + chats["sent"],
            "delivered": copies["delivered"] + chats["delivered"],
            "lost": copies["lost"] + chats["lost"],
            "duplicated": copies["duplicated"] + chats["duplicated"],
            "campaign_copies": copies,
            "chats": chats,
            "stream_disconnects": played.log.disconnects,
        },
        "latency_ms": _latency(played),
        "throughput": {
            "week_wall_s": round(week, 2),
            "copies_delivered_per_s": round(copies["delivered"] / week, 1) if week else None,
            "relay_requests": requests,
            "relay_requests_per_s": round(requests / run.wall_s, 1) if requests else None,
        },
        "spend": spend,
        "privacy_budget": privacy["per_business"],
        "analytics": analytics,
        "quality": quality_summary(played),
        "campaigns": [{"campaign": label, **row} for label, row in per_campaign.items()],
        "privacy_audit": audit,
        "anomalies": played.anomalies,
        "counts": {
            "copies": {
                k: copies[k]
                for k in (
                    "planned",
                    "submitted",
                    "accepted",
                    "released",
                    "delivered",
                    "refused_by_reason",
                    "expired",
                )
            },
            "chats_delivered": chats["delivered"],
            "charged_micro": spend["charged_micro"],
            "true_outcomes": analytics["true_outcomes"],
            "reports_sent": analytics["reports_sent"],
            "no_signal": analytics["no_signal"]["true"],
            "per_campaign": {
                label: {
                    k: row[k]
                    for k in ("audience", "accepted", "delivered", "refused_by_reason", "charged")
                }
                for label, row in per_campaign.items()
            },
        },
        "timings_s": {**played.timings, "total": round(run.wall_s, 2)},
    }


def summarize_compared(with_quality: SimRun, without: SimRun) -> dict[str, Any]:
    """The run with the quality system, and beside it what the same seed did without it."""
    data = summarize(with_quality)
    other = summarize(without)
    data["quality_comparison"] = compare(data["quality"], other["quality"])
    data["without_quality"] = {
        "passed": other["passed"],
        "failures": other["failures"],
        "messages": {k: other["messages"][k] for k in ("sent", "delivered", "lost", "duplicated")},
        "quality": other["quality"],
        "timings_s": other["timings_s"],
    }
    if not other["passed"]:
        data["passed"] = False
        data["failures"] += [f"without quality: {f}" for f in other["failures"]]
    return data


# --- text -------------------------------------------------------------------------------------


def _n(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _reasons(by_reason: dict[str, int] | None) -> str:
    if by_reason is None:
        return "unknown"  # an existing relay: only its database tells refusals apart
    return ", ".join(f"{r} {_n(n)}" for r, n in by_reason.items() if n) or "none"


def _eps(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def render(data: dict[str, Any]) -> str:
    """The summary for people."""
    verdict = "PASS" if data["passed"] else "FAIL"
    options, population, relay = data["options"], data["population"], data["relay"]
    messages = data["messages"]
    copies, chats = messages["campaign_copies"], messages["chats"]
    out = [f"Sealpost simulation: {verdict}"]
    out.append("=" * len(out[0]))
    where = (
        f"own relay on loopback (marketing cap {relay['marketing_cap_24h']} per 24 h, manual "
        f"clock; figures {relay['figures_after_h']} h after each send time, epsilon "
        f"{_eps(relay['epsilon_per_campaign'])} a campaign, budget "
        f"{_eps(relay['business_epsilon_30d'])} per business per 30 days)"
        if relay["own"]
        else f"existing relay {relay['url']} (its own clock, cap and privacy budget)"
    )
    out.append(
        f"{population['persons']:,} persons, {len(population['businesses'])} businesses, "
        f"{population['campaigns']} campaigns over {options['days']} simulated days "
        f"({data['virtual_time']['start']} to {data['virtual_time']['end']} UTC), "
        f"seed {options['seed']}; {where}; signals off on {population['signals_off']} "
        f"devices; epsilon ln 3 a report (k-ary randomized response)."
    )
    out.append(
        "profiles "
        + ", ".join(f"{k} {v}" for k, v in population["profiles"].items())
        + "; levels "
        + ", ".join(f"{k} {v}" for k, v in population["levels"].items())
        + f"; {population['promotions_stopped_before']} stopped promotions and "
        f"{population['blocked_before']} blocked a business before the week"
    )

    out += ["", "Messages", ""]
    out.append(
        f"  sent {messages['sent']:,}, delivered {messages['delivered']:,}, "
        f"lost {messages['lost']}, duplicated {messages['duplicated']}"
    )
    out.append(
        f"  campaign copies: {copies['planned']:,} planned, {copies['accepted']:,} accepted, "
        f"{_n(copies['released'])} released, {copies['delivered']:,} delivered (counted by the "
        f"clients), {_n(copies['refused'])} refused, {_n(copies['expired'])} expired"
        + ("" if relay["own"] else " (released, refused, expired: only in the relay's database)")
    )
    out.append(f"  refused by reason: {_reasons(copies['refused_by_reason'])}")
    if copies["rejected_at_submission"]:
        out.append(f"  rejected at submission: {_reasons(copies['rejected_at_submission'])}")
    out.append(
        f"  lost {copies['lost']}, duplicated {copies['duplicated']}, misdelivered "
        f"{copies['misdelivered']}, unacked at the end {copies['unacked_at_end']}"
        + ("" if relay["own"] else " (lost: left in a person's mailbox, never stored)")
    )
    out.append(
        f"  chats: {chats['sent']} sent, {chats['delivered']} delivered, lost {chats['lost']}, "
        f"duplicated {chats['duplicated']}; stream disconnects {messages['stream_disconnects']}"
    )

    latency, throughput, spend = data["latency_ms"], data["throughput"], data["spend"]
    out += ["", "Delivery", ""]
    out.append(
        f"  latency p50 {_n(latency['p50'])} ms, p99 {_n(latency['p99'])} ms, max "
        f"{_n(latency['max'])} ms over {latency['samples']:,} copies (release to client store)"
    )
    out.append(
        f"  throughput {_n(throughput['copies_delivered_per_s'])} copies/s over the week's "
        f"{throughput['week_wall_s']} s of wall time"
        + (
            f"; relay {_n(throughput['relay_requests'])} requests "
            f"({_n(throughput['relay_requests_per_s'])}/s), CPU {_n(relay['cpu_s'])} s"
            if throughput["relay_requests"]
            else ""
        )
    )
    currency = spend["currency"]

    def money(micro: int) -> str:
        return format_amount(micro, currency)

    out.append(
        f"  spend {spend['total']}: {money(spend['charged_micro'])} charged as copies were "
        f"released, {money(spend['rebates_micro'])} given back as rebates (from the published "
        f"figures), {money(spend['refunded_micro'] - spend['rebates_micro'])} other refunds; "
        + ", ".join(f"{b} {money(v)}" for b, v in spend["per_business_micro"].items())
    )

    analytics = data["analytics"]
    out += ["", "Campaigns", ""]
    rows = []
    estimates = {(r["campaign"], r["outcome"]): r for r in analytics["estimates"]}
    for c in data["campaigns"]:
        cells = [
            c["campaign"],
            f"{c['day']} {c['send_at'][11:]}",
            _n(c["audience"]),
            _n(c["delivered"]),
            _reasons(c["refused_by_reason"]),
            _n(c.get("reports")),
            "published" if c["figures"] == "published" else c["status"],
        ]
        for event in ("read", "clicked"):
            row = estimates.get((c["campaign"], event))
            cells.append(
                f"{row['true']} / {_n(row['estimate'])}" if row else "-",
            )
        rows.append(cells)
    out += [
        "  " + line
        for line in text_table(
            [
                "campaign",
                "day time",
                "audience",
                "delivered",
                "refused",
                "reports",
                "figures",
                "read true/est",
                "clicked true/est",
            ],
            rows,
            right={2, 3, 5},
        )
    ]
    out += [
        "",
        "Analytics (the figures businesses see, published once with noise, against the truth)",
        "",
    ]
    if analytics["published"]:
        out.append(
            f"  {analytics['published']} of {analytics['figures']} estimates published "
            f"({analytics['unpublished']} not: withheld, or not due yet); "
            f"{analytics['covered_by_95pct_interval']} of {analytics['published']} 95% "
            f"intervals hold the true count; error mean {_n(analytics['mean_abs_error'])} "
            f"people ({_n(analytics['mean_abs_error_pct'])} points of a campaign's reports "
            f"with an outcome, worst {_n(analytics['worst_abs_error_pct'])}), intervals +/- "
            f"{_n(analytics['mean_ci95_half_width'])} on average"
        )
    else:
        out.append(
            f"  none of {analytics['figures']} estimates published yet: a campaign's figures "
            "come once, at its figures_at"
        )
    no_signal = analytics["no_signal"]
    out.append(
        f"  {analytics['reports_sent']:,} anonymous reports sent, {analytics['reports_refused']} "
        f"refused, {no_signal['true']:,} with no_signal (signals off or budget spent; "
        f"published: {_n(no_signal['published'])}); true outcomes among the rest: "
        + ", ".join(f"{o} {n:,}" for o, n in analytics["true_outcomes"].items())
    )
    shuffling = analytics["shuffling"]
    parts = [f"each report epsilon {shuffling['local_epsilon_per_report']:.4g} (ln 3) on its own"]
    if shuffling["batch"]:
        at_batch = (
            f"shuffled in batches of B = {shuffling['batch']}: central epsilon "
            f"{shuffling['central_epsilon_at_batch']:g}"
        )
        if not shuffling["amplified_at_batch"]:
            at_batch += (
                f" (the bound needs {shuffling['min_batch_for_bound']:,} reports of one "
                "campaign in a batch)"
            )
        parts.append(at_batch)
    if shuffling["largest_campaign_reports"]:
        parts.append(
            f"the largest campaign's {shuffling['largest_campaign_reports']:,} reports in one "
            f"batch: {shuffling['central_epsilon_largest_campaign_one_batch']:g} "
            f"(delta {shuffling['delta']:g})"
        )
    out += textwrap.wrap("; ".join(parts), 98, initial_indent="  ", subsequent_indent="    ")

    out += ["", "Quality (what the relay did with what it learned)", ""]
    out += ["  " + line for line in render_quality(data["quality"])]
    if "quality_comparison" in data:
        out += [""] + ["  " + line for line in render_comparison(data["quality_comparison"])]

    out += ["", "Privacy budget (what each business's figures cost it)", ""]
    when = data["virtual_time"]["figures_published"]
    out.append(
        f"  every campaign's figures out by {when} UTC (virtual time; the clock moved past "
        "each campaign's figures_at after the week)"
        if when
        else "  the relay's clock is real: its figures come days after this run"
    )
    for business, b in data["privacy_budget"].items():
        out.append(
            f"  {business}: epsilon {_eps(b['epsilon_spent'])} spent over the run on "
            f"{b['published']} of {b['campaigns']} campaign reports (budget "
            f"{_eps(b['epsilon_30d'])} per 30 days"
            + (f"; {b['withheld']} withheld" if b["withheld"] else "")
            + ")"
        )

    audit = data["privacy_audit"]
    out += ["", "Privacy audit", ""]
    if not audit["run"]:
        out.append(f"  not run ({audit['reason']})")
    else:
        rows = []
        for c in audit["checks"]:
            # Long summaries continue on lines of their own under the summary column.
            first, *more = textwrap.wrap(c["summary"], SUMMARY_WIDTH) or [""]
            rows.append([c["name"], "PASS" if c["passed"] else "FAIL", first])
            rows += [["", "", line] for line in more]
        out += [
            "  " + line for line in text_table(["check", "result", "summary"], rows, right=set())
        ]
        for c in audit["checks"]:
            out += [f"    {c['name']}: {v}" for v in c["violations"]]
        if audit["note"]:
            out.append(f"  note: {audit['note']}")
    if data["anomalies"]:
        out += ["", "Anomalies", ""]
        out += [f"  - {a}" for a in data["anomalies"][:20]]
        if len(data["anomalies"]) > 20:
            out.append(f"  ... and {len(data['anomalies']) - 20} more")
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in data["timings_s"].items())
    out += ["", *textwrap.wrap(f"Timing: {timings}", 100, subsequent_indent="  ")]
    out += [
        "",
        f"Verdict: {verdict}" + (f" ({'; '.join(data['failures'])})" if data["failures"] else ""),
    ]
    return "\n".join(out)
