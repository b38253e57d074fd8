"""``sealpost audit``: the researcher's audit of the privacy boundary, attacks included."""

import argparse
import sys
from pathlib import Path
from typing import Any

DESCRIPTION = """\
Run a real relay, a real shuffler and real clients on loopback, with campaigns and chats full
of planted canaries (customer names, coupon codes, phone numbers, message texts); record every
request the relay and the shuffler receive (headers and body) and dump all of their storage;
then check what crossed and what was kept, and play the threat model's adversaries against it.

Checks (each PASS or FAIL, with its violations):
  canaries_absent      no canary, in clear or encoded, in any byte the relay saw or kept
  signal_requests      every anonymous report request is exactly the report schema, with no
                       credential, cookie, handle or message id
  token_unlinkability  no value links a token's issuance to its redemption (traffic, storage,
                       order), one public key per campaign
  declared_schemas     every other request's body validates against its schema in shared.api
  reports_counted_once each report counted once; a replayed request is refused
  business_view_noisy  a business sees no exact figure about people: declared exact fields,
                       noisy figures published once, every copy charged at release
  estimates_vs_truth   published 95% intervals hold the true counts per outcome, and the
                       reports with no signal (see the report)

Attacks (each states the adversary's measured advantage over chance, or what it found,
and fails past the threshold in its summary):
  business_oracle      a business with an audience of one and sock puppets reads its
                       reports, ledger, refunds, balance, statuses and send results to guess
                       one person's choice: within e^eps/(1+e^eps) of chance, and nothing
                       beside the noisy figures may tell the worlds apart
  timing_linkage       the relay links a person to her report by time, over simulated days
                       of app opens (a few a day, minutes each; reports leave while the app
                       is open): after her delivery, after her opens, her reports together;
                       no better than the declared rule does on the same opens; batches of
                       at least B, in an order unrelated to sending
  identity_values      no hash of a handle, phone digits, public key or fingerprint, in any
                       field or encoding (raw, hex, base64) of the anonymous channel; report
                       outcomes that no digest of the handle picks
  token_linkage        token inputs the relay cannot re-derive from handle, campaign, message
                       id or keys, never reused, uniformly random bytes
  connection_linkage   reports reach the relay only in the shuffler's signed batches, never
                       from a device's own address or its account's connection; one report
                       per connection at the shuffler
  randomized_response  each report names its person's true outcome only as often as k-ary
                       randomized response allows (1/2 at eps = ln 3, each other outcome
                       1/6); with the budget spent, every report says no_signal
  report_existence     every delivered copy's report arrives, budget spent or not
  relay_keeps          per report the relay keeps its spent token under its campaign: no
                       arrival time, address or order column, no undeclared table

The audited relay runs on a manual clock; the devices live in simulated time, so days of app
opens take seconds. Exit status 1 when any check fails.

--selftest asks whether the audit catches what it claims: it runs the audit once on the real
code (which must pass), then once per known leak, each planted alone into a running copy (a
patch of the device, relay or shuffler code, applied only in the audit's own processes; see
sealpost/audit/plants.py and docs/privacy-boundary.md §6). Its table says, per leak, which
check caught it and what that check measured. Exit status 1 unless every leak is caught.
--plant NAME runs one ordinary audit with one of those leaks, to see the report it gives.
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
  sealpost audit --selftest            # plant each known leak, one at a time; all caught?
  sealpost audit --selftest --json
  sealpost audit --plant report_delay_minutes   # one audit with one leak planted
"""

DEFAULT_PERSONS = 200


def register(sub: Any) -> None:
    from sealpost.audit.plants import PLANTS

    p = sub.add_parser(
        "audit",
        help="audit the privacy boundary on a throwaway relay (attacks, --selftest)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--persons",
        type=int,
        default=None,
        help=f"simulated persons (default {DEFAULT_PERSONS}; with --selftest, 40 per run)",
    )
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
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--selftest",
        action="store_true",
        help=f"run the audit on the real code, then with each of {len(PLANTS)} known leaks "
        "planted alone; exit 1 unless the real code passes and every leak is caught",
    )
    mode.add_argument(
        "--plant",
        choices=sorted(PLANTS),
        metavar="NAME",
        help="plant one known leak for this run (names: " + ", ".join(sorted(PLANTS)) + ")",
    )
    p.set_defaults(run=run)


def run(args: Any) -> int:
    from sealpost.commands.output import fail

    if args.k is not None:
        return fail(K_GONE, 2)
    if args.persons is not None and args.persons < 10:
        return fail("--persons must be at least 10 (two campaigns need an audience)", 2)
    if args.workers is not None and not 0 <= args.workers <= 16:
        return fail("--workers must be between 0 and 16", 2)
    if args.selftest:
        return _selftest(args)
    return _audit(args)


def _audit(args: Any) -> int:
    from sealpost.audit import AuditOptions, run_audit
    from sealpost.audit.report import render
    from sealpost.commands.output import print_json

    options = AuditOptions(
        persons=args.persons or DEFAULT_PERSONS,
        seed=args.seed,
        keep=args.keep,
        workers=args.workers,
        plant=args.plant,
    )
    result = run_audit(options)
    if args.json:
        print_json(result.to_json())
    else:
        print(render(result))
    return 0 if result.passed else 1


def _selftest(args: Any) -> int:
    from sealpost.audit.report import render_selftest
    from sealpost.audit.selftest import PERSONS, Run, run_selftest
    from sealpost.commands.output import print_json

    def progress(run: Run) -> None:
        if run.plant is None:
            line = f"real code: {'PASS' if run.passed else 'FAIL ' + ', '.join(run.failed)}"
        else:
            verdict = f"caught by {', '.join(run.caught_by)}" if run.caught else "NOT CAUGHT"
            line = f"{run.plant.name}: {verdict}"
        print(f"selftest: {line} ({run.seconds:.1f} s)", file=sys.stderr, flush=True)

    result = run_selftest(persons=args.persons or PERSONS, seed=args.seed, on_run=progress)
    if args.json:
        print_json(result.to_json())
    else:
        print(render_selftest(result))
    return 0 if result.passed else 1
