"""``sealpost prefs``: a person's marketing choices, which the relay enforces."""

import argparse
from typing import Any

from sealpost.commands.context import run_client
from sealpost.commands.output import fail, print_json

EPILOG = """\
examples:
  sealpost prefs --profile bob show
  sealpost prefs --profile bob block acme
  sealpost prefs --profile bob stop-promotions acme      # utility messages still arrive
  sealpost prefs --profile bob level weekly 3            # at most 3 marketing messages a week
  sealpost prefs --profile bob level chatted             # only businesses I have written to

Whatever the level, the relay caps marketing at 2 messages per person per 24 hours, across all
businesses (the relay's setting SEALPOST_RELAY_MARKETING_CAP_24H).

`show` also prints what this device's anonymous interaction reports have cost you (ε = ln 3
each): today, over the last 30 days, ever, and per business, next to each cap. Past a cap,
reports say "no signal". That budget is kept on this device; the relay never sees it.
"""

ACTIONS = {
    "block": ("blocked", True),
    "unblock": ("blocked", False),
    "stop-promotions": ("promotions-stopped", True),
    "resume-promotions": ("promotions-stopped", False),
}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "prefs",
        help="block businesses, stop promotions, set a marketing level",
        description="Your marketing choices, enforced by the relay.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--profile", required=True)
    p.add_argument("--json", action="store_true", help="print the resulting choices as JSON")
    p.add_argument("action", choices=[*ACTIONS, "level", "show"])
    p.add_argument(
        "value", nargs="*", help="a business handle, or a level: all | chatted | weekly N | none"
    )
    p.set_defaults(run=run)


def run(args: Any) -> int:
    from shared.api import SetLevel

    if args.action in ACTIONS and len(args.value) != 1:
        return fail(f"`prefs {args.action}` takes one business handle", 2)
    level = None
    if args.action == "level":
        values = args.value
        if (
            not values
            or values[0] not in ("all", "chatted", "weekly", "none")
            or ((values[0] == "weekly") != (len(values) == 2))
            or (values[0] == "weekly" and not values[1].isdigit())
        ):
            return fail("level is one of: all | chatted | weekly N | none", 2)
        level = SetLevel(level=values[0], weekly_limit=int(values[1]) if len(values) == 2 else None)

    async def body(m: Any) -> int:
        if args.action in ACTIONS:
            choice, on = ACTIONS[args.action]
            prefs = await m.api.set_choice(choice, args.value[0], on)
        elif level is not None:
            prefs = await m.api.set_level(level)
        else:
            prefs = await m.api.preferences()
        budget = m.signals.budget_summary() if args.action == "show" else None
        if args.json:
            print_json({**prefs.model_dump(), **({"signal_budget": budget} if budget else {})})
            return 0
        limit = f" ({prefs.weekly_limit} a week)" if prefs.weekly_limit is not None else ""
        print(f"marketing level: {prefs.level}{limit}")
        print(f"blocked: {', '.join(prefs.blocked) or 'nobody'}")
        print(f"promotions stopped: {', '.join(prefs.promotions_stopped) or 'none'}")
        if budget:
            _print_budget(budget)
        return 0

    return run_client(args, body)


def _print_budget(budget: dict[str, Any]) -> None:
    """The device's signal budget, each figure next to its cap."""

    def of(entry: dict[str, Any]) -> str:
        cap = entry["cap"]
        return f"{entry['spent']:.1f}" + (f" of {cap:.1f}" if cap is not None else " (no cap)")

    print(
        f"interaction reports: signals {budget['signals']}, ε = "
        f"{budget['epsilon_per_report']:.2f} a report; spent today {of(budget['today'])}, "
        f"last 30 days {of(budget['last_30_days'])}, ever {of(budget['lifetime'])}"
    )
    for business, entry in budget["by_business"].items():
        print(f"  about @{business}'s campaigns, ever: {of(entry)}")
