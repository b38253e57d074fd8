"""``sealpost requests``: message requests, listed apart, and answered.

A message request is a conversation someone else started: you never wrote to them and never
accepted them. Until you accept, the relay lets only a few of their messages through.
"""

import argparse
from typing import Any

from sealpost.commands.context import run_client
from sealpost.commands.output import fail, print_json, terminal_safe

EPILOG = """\
examples:
  sealpost requests --profile carol                   # who wrote to you first, and what
  sealpost requests accept --profile carol mallory    # their messages are no longer held
  sealpost requests block --profile carol mallory     # nothing from them reaches you
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "requests",
        help="message requests: list them, accept or block a sender",
        description="List message requests (conversations you did not start and have not "
        "accepted), or answer one. Until you accept or reply, the relay lets only a few of "
        "a new contact's messages through; writing to someone accepts them too.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--profile", help="whose requests (required)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=list_requests)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    for name, run, what in (
        ("accept", accept, "accept a sender: their messages are no longer held back"),
        ("block", block, "block a sender: nothing from them reaches you"),
    ):
        a = actions.add_parser(name, help=what, epilog=EPILOG)
        a.add_argument("--profile", required=True)
        a.add_argument("handle", help="the sender's handle")
        a.add_argument("--json", action="store_true")
        a.set_defaults(run=run)


def list_requests(args: Any) -> int:
    if not args.profile:
        return fail("--profile is required: sealpost requests --profile NAME")

    async def body(messenger: Any) -> int:
        requests = messenger.store.requests()
        latest = messenger.store.last_messages()
        rows = [
            {
                "handle": c.peer,
                "display_name": c.display_name,
                "kind": c.kind,
                "unread": c.unread,
                "last": (latest[c.peer].text or "") if c.peer in latest else "",
            }
            for c in requests
        ]
        if args.json:
            print_json({"requests": rows})
            return 0
        if not rows:
            print("no message requests")
            return 0
        for row in rows:
            print(
                f"@{row['handle']} ({terminal_safe(row['display_name'])}, {row['kind']}): "
                f"{row['unread']} unread; last: {terminal_safe(row['last'])[:80]}"
            )
        print(
            f"answer with: sealpost requests accept|block --profile {messenger.profile.info.name}"
            " HANDLE"
        )
        return 0

    return run_client(args, body)


def accept(args: Any) -> int:
    async def body(messenger: Any) -> int:
        prefs = await messenger.accept_request(args.handle)
        if args.json:
            print_json({"accepted": args.handle, "preferences": prefs.model_dump()})
        else:
            print(f"accepted @{args.handle}: their messages are no longer held back")
        return 0

    return run_client(args, body)


def block(args: Any) -> int:
    async def body(messenger: Any) -> int:
        prefs = await messenger.api.set_choice("blocked", args.handle, True)
        if args.json:
            print_json({"blocked": args.handle, "preferences": prefs.model_dump()})
        else:
            print(f"blocked @{args.handle}: nothing from them reaches you (undo: sealpost prefs)")
        return 0

    return run_client(args, body)
