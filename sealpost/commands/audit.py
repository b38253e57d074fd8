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
  business_view_noisy  a business sees no exact figure about people: its campaign reports
                       hold only the declared exact fields (what it did and paid); the
                       figures, published once per campaign, are noisy counts with margins
                       and estimates with intervals; every copy is charged at release
  estimates_vs_truth   published 95% intervals hold the true counts (see the report)

Devices send their reports through a shuffler (sealpost shuffler), as in a deployment: the
relay accepts reports only in the shuffler's signed batches, and the shuffler's own traffic
and database are recorded and searched too.

The audited relay runs on a manual clock: the campaigns go out at once, and the clock is
moved past their figures' due time (the relay's figures_after_h) so that they are published.
Exit status 1 when any check fails.
"""

K_GONE = (
    "--k is gone: the relay no longer suppresses figures below a threshold k; every figure a "
    "business sees is published once per campaign with noise (checked by "
    "business_view_noisy)"
)

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
        help="gone: the relay no longer hides small figures below a threshold k, it publishes "
        "them once with noise; giving it is an error",
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

    if args.k is not None:
        return fail(K_GONE, 2)
    if args.persons < 10:
        return fail("--persons must be at least 10 (two campaigns need an audience)", 2)
    if args.workers is not None and not 0 <= args.workers <= 16:
        return fail("--workers must be between 0 and 16", 2)
    options = AuditOptions(
        persons=args.persons, seed=args.seed, keep=args.keep, workers=args.workers
    )
    result = run_audit(options)
    if args.json:
        print_json(result.to_json())
    else:
        print(render(result))
    return 0 if result.passed else 1
