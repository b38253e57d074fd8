"""``sealpost audit``: the researcher's audit of the privacy boundary."""

import argparse
from pathlib import Path
from typing import Any

DESCRIPTION = """\
Run a real relay and real clients on loopback, with campaigns and chats full of planted
canaries (customer names, coupon codes, phone numbers, message texts); record every request
the relay receives (headers and body) and dump all of its storage; then check:

  canaries_absent      no canary, in clear or encoded, in any byte the relay saw or kept
  signal_requests      every anonymous report request is exactly the report schema, with no
                       credential, cookie, handle or message id
  token_unlinkability  no value links a token's issuance to its redemption (traffic, storage,
                       order), one public key per campaign
  declared_schemas     every other request's body validates against its schema in shared.api
  reports_counted_once each report counted once; a replayed request is refused
  k_threshold          figures from fewer than k reports are suppressed
  estimates_vs_truth   published 95% intervals hold the true counts (see the report)

Exit status 1 when any check fails.
"""

EPILOG = """\
examples:
  sealpost audit                       # 200 persons, readable report
  sealpost audit --persons 1000 --json > audit.json
  sealpost audit --seed 7 --keep /tmp/audit   # keep the relay database and profiles
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "audit",
        help="audit the privacy boundary on a throwaway relay",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--persons", type=int, default=200, help="simulated persons (default 200)")
    p.add_argument("--seed", type=int, default=1, help="seed of the simulated world (default 1)")
    p.add_argument(
        "--k",
        type=int,
        default=None,
        help="suppression threshold of the audited relay (default: 50, or persons/4 if smaller)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes that play the simulated persons (default: 2 from 200 persons on a "
        "machine with 2+ cores, else 0: all in this process)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--keep", type=Path, help="copy the relay database and profiles here")
    p.set_defaults(run=run)


def run(args: Any) -> int:
    from sealpost.audit import AuditOptions, run_audit
    from sealpost.audit.report import render
    from sealpost.commands.output import fail, print_json
    from shared.signals import MIN_K

    if args.persons < 10:
        return fail("--persons must be at least 10 (two campaigns need an audience)", 2)
    if args.k is not None and args.k < MIN_K:
        return fail(f"--k must be at least {MIN_K}", 2)
    if args.workers is not None and not 0 <= args.workers <= 16:
        return fail("--workers must be between 0 and 16", 2)
    options = AuditOptions(
        persons=args.persons, seed=args.seed, k=args.k, keep=args.keep, workers=args.workers
    )
    result = run_audit(options)
    if args.json:
        print_json(result.to_json())
    else:
        print(render(result))
    return 0 if result.passed else 1
