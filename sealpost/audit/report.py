"""The audit report for people: sections, a table of checks, the estimates table."""

from typing import TYPE_CHECKING, Any

from sealpost.audit.runner import AuditResult

if TYPE_CHECKING:  # the selftest imports the runner too; only its result is named here
    from sealpost.audit.selftest import SelftestResult


def text_table(
    headers: list[str], rows: list[list[str]], right: set[int] | None = None
) -> list[str]:
    """Aligned plain-text table lines (columns in ``right`` right-aligned); the simulator's
    summary uses it too."""
    right = right or set()
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def render(result: AuditResult) -> str:
    data = result.to_json()
    out: list[str] = []
    verdict = "PASS" if result.passed else "FAIL"
    failed = [c for c in result.checks if not c.passed]
    out.append(f"Sealpost privacy audit: {verdict}")
    out.append("=" * len(out[-1]))
    world = data["world"]
    out.append(
        f"{world['persons']:,} persons, businesses {', '.join(world['businesses'])}, "
        f"{len(world['campaigns'])} campaigns, {world['chats']} chat messages, "
        f"{world['canaries']:,} canaries planted; seed {data['seed']}."
    )
    figures = data["figures"]
    out.append(
        f"Figures reach businesses once per campaign, {figures['after_h']} h after its send "
        f"time, with noise at epsilon {figures['epsilon_per_campaign']:g} (a business may "
        f"spend {figures['business_epsilon_30d']:g} in 30 days)."
    )
    out.append(
        "A real relay ran on loopback behind a recorder; every request it received (method, "
        "path, headers, body) and everything it stored were searched and checked."
    )

    if data.get("plant"):
        out.append(f"PLANTED LEAK (selftest hook): {data['plant']}.")

    out += ["", "1. Checks", ""]
    out += text_table(
        ["check", "result", "summary"],
        [[c.name, "PASS" if c.passed else "FAIL", c.summary] for c in result.checks],
    )
    attacks = [c for c in result.checks if c.measured]
    if attacks:
        out += ["", "   What each attack measured (the adversary's advantage, or what it found):"]
        out += [f"     {c.name}: {c.measured}" for c in attacks]
    for check in failed:
        out += ["", f"   {check.name}: {check.violation_count} violation(s)"]
        out += [f"     - {v}" for v in check.violations]
        if check.violation_count > len(check.violations):
            out.append(f"     ... and {check.violation_count - len(check.violations)} more")

    out += ["", "2. Estimates versus true counts", ""]
    rows = [
        [
            r["campaign"],
            r["event"],
            _fmt(r["reports"]),
            _fmt(r["published_reports"]),
            _fmt(r["true"]),
            _fmt(r["estimate"]),
            f"[{_fmt(r['low'])}, {_fmt(r['high'])}]" if r["low"] is not None else "unpublished",
            {True: "yes", False: "NO", None: "-"}[r["covered"]],
        ]
        for r in result.estimates
    ]
    out += text_table(
        [
            "campaign",
            "outcome",
            "reports",
            "shown (noisy)",
            "true",
            "estimate",
            "95% interval",
            "covered",
        ],
        rows,
        right={2, 3, 4, 5},
    )
    estimates = next(c for c in result.checks if c.name == "estimates_vs_truth")
    out += ["", "   Criterion: " + estimates.details["criterion"]]

    out += ["", "3. What the relay received", ""]
    traffic = data["traffic"]
    out.append(
        f"   {traffic['requests']:,} requests, {traffic['request_bytes']:,} bytes in, "
        f"{traffic['answer_bytes']:,} bytes answered"
    )
    out += [
        "   " + line
        for line in text_table(
            ["endpoint", "requests"],
            [[k, f"{v:,}"] for k, v in traffic["per_endpoint"].items()],
            right={1},
        )
    ]
    signals = next(c for c in result.checks if c.name == "signal_requests")
    out.append(
        "   anonymous channel: header names "
        + ", ".join(signals.details["header_names"])
        + "; reports per request "
        + ", ".join(f"{n}: {c}" for n, c in signals.details["reports_per_request"].items())
    )

    out += ["", "4. What the relay kept", ""]
    storage = data["storage"]
    out.append(
        "   files: " + ", ".join(f"{name} {size:,} B" for name, size in storage["files"].items())
    )
    out += [
        "   " + line
        for line in text_table(
            ["table", "rows", "columns"],
            [
                [t, f"{n:,}", ", ".join(storage["columns"].get(t, []))]
                for t, n in storage["rows"].items()
            ],
            right={1},
        )
    ]

    out += ["", "5. Timing", ""]
    out.append("   " + ", ".join(f"{k} {v:.1f} s" for k, v in data["timings_s"].items()))
    out += ["", f"Verdict: {verdict}" + (f" ({len(failed)} check(s) failed)" if failed else "")]
    return "\n".join(out)


def render_selftest(result: "SelftestResult") -> str:
    """The selftest's verdict and its table: each leak, the check that caught it, and what
    that check measured."""
    verdict = "PASS" if result.passed else "FAIL"
    caught = sum(run.caught for run in result.planted)
    out = [f"Sealpost audit selftest: {verdict}", "=" * (25 + len(verdict))]
    out.append(
        f"The audit ran on the real code, then once per known leak, each planted alone into "
        f"a running copy ({result.persons} persons, seed {result.seed}): {caught} of "
        f"{len(result.planted)} leaks caught."
    )
    clean = result.clean
    out.append(
        "Real code: "
        + ("every check passed" if clean.passed else "FAILED " + ", ".join(clean.failed))
        + f" ({clean.seconds:.1f} s)."
    )
    out.append("")
    rows = []
    for run in result.planted:
        assert run.plant is not None
        rows.append(
            [
                run.plant.name,
                run.plant.party,
                ", ".join(run.caught_by) if run.caught else "NOT CAUGHT",
                run.measured[:150],
            ]
        )
    out += text_table(["leak", "party", "caught by", "measured"], rows)
    missed = [run for run in result.planted if not run.caught]
    if missed:
        out += ["", "Not caught (the audit must be fixed before it is trusted):"]
        out += [
            f"  - {run.plant.name if run.plant else '?'}: {run.plant.leak if run.plant else ''}"
            for run in missed
        ]
    out += ["", "Leaks:"]
    out += [f"  {run.plant.name}: {run.plant.leak}" for run in result.planted if run.plant]
    seconds = clean.seconds + sum(run.seconds for run in result.planted)
    out += ["", f"Verdict: {verdict} ({seconds:.0f} s)"]
    return "\n".join(out)
