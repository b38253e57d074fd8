"""``sealpost bench``: every benchmark, each compared with a floor measured in the same run."""

import argparse
import json
import os
import platform
from typing import Any

BENCHMARKS = ("campaign",)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="run the benchmarks",
        description="Run the benchmarks. Each reports its time next to a floor measured in the "
        "same run on this machine, and whether it meets its target ratio.",
        epilog="examples:\n  sealpost bench\n  sealpost bench --json --only campaign "
        "--messages 2000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.add_argument("--only", choices=BENCHMARKS, action="append", help="run just these")
    p.add_argument("--messages", type=int, default=10_000, help="copies in the campaign bench")
    p.set_defaults(run=run)


def run(args: Any) -> int:
    from sealpost.benchmarks.campaign import campaign_send

    chosen = args.only or list(BENCHMARKS)
    results = []
    for name in chosen:
        if not args.json:
            print(f"running {name} ...", flush=True)
        if name == "campaign":
            results.append(campaign_send(messages=args.messages))
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
            verdict = "OK" if r["ok"] else "MISSED"
            print(
                f"{r['name']}: {r['wall_s']} s vs floor {r['floor_s']} s -> ratio "
                f"{r['ratio']} (target <= {r['target_ratio']}) {verdict}"
            )
    return 0 if report["ok"] else 1
