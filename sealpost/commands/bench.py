"""``sealpost bench``: every benchmark, each compared with a floor measured in the same run."""

import argparse
import json
import os
import platform
from collections.abc import Callable
from typing import Any

BENCHMARKS = ("campaign", "delivery", "catchup", "tui", "signals")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="run the benchmarks",
        description="Run the benchmarks. Each reports its figures next to a floor measured in "
        "the same run on this machine, and whether it meets its target. Exit status 1 when "
        "a target is missed.",
        epilog="examples:\n  sealpost bench --json > bench.json\n"
        "  sealpost bench --only campaign --messages 2000\n"
        "  sealpost bench --only delivery --clients 200\n"
        "  sealpost bench --only catchup   # a client opening to 10,000 waiting messages\n"
        "  sealpost bench --only tui   # first paint, chat switch: 50 chats, 10,000 messages\n\n"
        "delivery runs on SQLite with 1 relay process, durable (every commit synced, the\n"
        "default) and not, and, when PostgreSQL answers on 127.0.0.1:5432\n"
        "($SEALPOST_TEST_PG), with 1 and 2 processes there too.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.add_argument("--only", choices=BENCHMARKS, action="append", help="run just these")
    p.add_argument("--messages", type=int, default=10_000, help="messages per benchmark")
    p.add_argument("--clients", type=int, default=1000, help="connected clients (delivery)")
    p.set_defaults(run=run)


def _campaign(args: Any) -> list[dict[str, Any]]:
    from sealpost.benchmarks.campaign import campaign_send

    return [campaign_send(messages=args.messages)]


def _delivery(args: Any) -> list[dict[str, Any]]:
    from sealpost.benchmarks.delivery import delivery

    # SQLite both ways: durable (the default) and not, so the price of durability is shown.
    setups = (
        ("sqlite", 1, True),
        ("sqlite", 1, False),
        ("postgres", 1, True),
        ("postgres", 2, True),
    )
    return [
        delivery(backend, processes, clients=args.clients, messages=args.messages, durable=durable)
        for backend, processes, durable in setups
    ]


def _catchup(args: Any) -> list[dict[str, Any]]:
    from sealpost.benchmarks.catchup import catchup

    return [catchup(messages=args.messages)]


def _tui(args: Any) -> list[dict[str, Any]]:
    from sealpost.benchmarks.tui import tui_bench

    return tui_bench(chats=50, messages=args.messages)


def _signals(args: Any) -> list[dict[str, Any]]:
    from sealpost.benchmarks.signals import estimation_error

    return [estimation_error()]


RUNNERS: dict[str, Callable[[Any], list[dict[str, Any]]]] = {
    "campaign": _campaign,
    "delivery": _delivery,
    "catchup": _catchup,
    "tui": _tui,
    "signals": _signals,
}


def _line(r: dict[str, Any]) -> str:
    verdict = "OK" if r["ok"] else "MISSED"
    if "skipped" in r:
        return f"{r['name']}: skipped ({r['skipped']})"
    if "target_s" in r:  # an absolute time target; the floor is shown for comparison
        return (
            f"{r['name']}: {r['wall_s']} s vs floor {r['floor_s']} s (ratio {r['ratio']}); "
            f"target {r['target']} {verdict}"
        )
    if "ratio" in r:
        return (
            f"{r['name']}: {r['wall_s']} s vs floor {r['floor_s']} s -> ratio {r['ratio']} "
            f"(target <= {r['target_ratio']}) {verdict}"
        )
    if "worst_error_pct" in r:
        published = r.get("published")
        coverage = r.get("coverage")
        return (
            f"{r['name']}: worst error {r['worst_error_pct']}% of "
            + (
                f"the {r['with_signal']} reports with an outcome"
                if "with_signal" in r
                else f"{r['recipients']} recipients"
            )
            + f", 95% CI about ±{r['ci_half_width_pct']}%"
            + (
                f"; published intervals hold the truth {coverage['covered']:.1%} of "
                f"{coverage['intervals']:,} times"
                if coverage
                else ""
            )
            + f" (target {r['target']}) {verdict}"
            + (
                f"; as published, with the relay's noise at epsilon "
                f"{published['central_epsilon']:g}: worst {published['worst_error_pct']}%, "
                f"CI about ±{published['ci_half_width_pct']}%"
                if published
                else ""
            )
        )
    if "messages_per_s" in r:
        return (
            f"{r['name']}: {r['messages_per_s']} msg/s (floor {r['floor_rows_per_s']} "
            f"rows/s), p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms at "
            f"{r['paced_rate']} msg/s; target {r['target']} {verdict}"
        )
    return f"{r['name']}: {json.dumps(r)}"


def run(args: Any) -> int:
    results = []
    for name in args.only or list(BENCHMARKS):
        if not args.json:
            print(f"running {name} ...", flush=True)
        results += RUNNERS[name](args)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "results": results,
        "ok": all(r["ok"] for r in results),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for r in results:
            print(_line(r))
    return 0 if report["ok"] else 1
