"""``sealpost contact``: safety numbers, and what to do when a contact's key changes.

Contacts' keys are pinned on first use. Comparing the safety number with the other person (on
both devices, in person or over a channel you trust) shows that neither key was swapped by the
relay before that; a later change is held until you accept it here.
"""

import argparse
from datetime import UTC, datetime
from typing import Any

from sealpost.commands.context import run_client
from sealpost.commands.output import fail, print_json, terminal_safe

EPILOG = """\
examples:
  sealpost contact verify --profile bob acme                  # show the safety number
  sealpost contact verify --profile bob acme --mark-verified  # you compared it: it matches
  sealpost contact accept --profile bob acme                  # trust acme's new key
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "contact",
        help="safety numbers; accept a contact's changed key",
        description="Compare safety numbers with a contact, and accept a contact's new key "
        "after its safety number changed (until then, messages signed with the new key are "
        "held and nothing is sealed to it).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    v = actions.add_parser(
        "verify",
        help="print the safety number with a contact (asks the directory for key changes)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    v.add_argument("--profile", required=True)
    v.add_argument("handle", help="the contact's handle")
    v.add_argument(
        "--mark-verified",
        action="store_true",
        help="record that you compared the number with the contact and it matched",
    )
    v.add_argument("--unmark", action="store_true", help="clear the verified mark")
    v.add_argument("--offline", action="store_true", help="use the pinned keys; ask no relay")
    v.add_argument("--json", action="store_true")
    v.set_defaults(run=verify)

    a = actions.add_parser(
        "accept",
        help="pin a contact's new key and show the messages it signed",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a.add_argument("--profile", required=True)
    a.add_argument("handle", help="the contact's handle")
    a.add_argument(
        "--mark-verified",
        action="store_true",
        help="you compared the new safety number with the contact and it matched",
    )
    a.add_argument("--json", action="store_true")
    a.set_defaults(run=accept)


def commands(profile: str, handle: str) -> dict[str, str]:
    """The commands that go with a key change, as printed wherever one is reported."""
    return {
        "verify": f"sealpost contact verify --profile {profile} {handle}",
        "accept": f"sealpost contact accept --profile {profile} {handle}",
    }


def _time(ms: int | None) -> str:
    if ms is None:
        return "?"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _indented(number: str) -> str:
    from shared.safety_numbers import format_safety_number

    return "\n".join("  " + line for line in format_safety_number(number).splitlines())


def describe(messenger: Any, contact: Any) -> dict[str, Any]:
    """What ``contact verify`` prints, as data."""
    changed = contact.key_changed
    return {
        "handle": contact.handle,
        "display_name": contact.display_name,
        "safety_number": messenger.safety_number(contact),
        "verified": contact.safety_verified,
        "key_changed": changed,
        "key_changed_at": contact.key_changed_at,
        "new_safety_number": messenger.safety_number(contact, new=True) if changed else None,
    }


def verify(args: Any) -> int:
    async def body(messenger: Any) -> int:
        from client.relay_api import RelayUnavailable

        note = None
        if args.offline:
            contact = messenger.store.contact(args.handle)
        else:
            try:
                contact = await messenger.check_contact(args.handle)
            except RelayUnavailable:
                contact = messenger.store.contact(args.handle)
                note = "the relay is unreachable: shown with the keys pinned on this device"
        if contact is None:
            return fail(f"no keys pinned for @{args.handle} yet; run without --offline")
        if args.mark_verified or args.unmark:
            contact = messenger.mark_verified(args.handle, verified=not args.unmark)
        data = describe(messenger, contact)
        if args.json:
            print_json({**data, "note": note})
            return 0
        print_contact(messenger, data, note)
        return 0

    return run_client(args, body)


def print_contact(messenger: Any, data: dict[str, Any], note: str | None) -> None:
    handle = data["handle"]
    run = commands(messenger.profile.info.name, handle)
    name = terminal_safe(data["display_name"])
    if note:
        print(f"note: {note}")
    if data["key_changed"]:
        print(
            f"WARNING: {name}'s safety number changed (seen {_time(data['key_changed_at'])}): "
            f"the directory now gives @{handle} a different key.\n"
            "Messages signed with the new key are held, and nothing is sealed to it, until you "
            "accept it. Compare the new safety number with the one on their device first."
        )
        new = _indented(data["new_safety_number"])
        print(f"\nNew safety number with {name} (@{handle}):\n{new}")
        print(f"\nPrevious (pinned) safety number:\n{_indented(data['safety_number'])}")
        print(f"\nIf the new number matches theirs, accept the new key:\n  {run['accept']}")
        return
    print(f"Safety number with {name} (@{handle}):\n{_indented(data['safety_number'])}")
    if data["verified"]:
        print("\nVerified: you compared it with them and it matched.")
    else:
        print(
            "\nNot verified. Compare it with the number on their device (in person, or over a "
            "channel you trust); if they match, run:\n"
            f"  {run['verify']} --mark-verified"
        )


def accept(args: Any) -> int:
    async def body(messenger: Any) -> int:
        from client.relay_api import RelayUnavailable

        contact = messenger.store.contact(args.handle)
        if contact is None:
            return fail(f"no keys pinned for @{args.handle}: nothing to accept")
        changed = contact.key_changed
        # Also with no change waiting: releases what an earlier accept could not (a template
        # that could not be fetched then).
        released = await messenger.accept_new_key(args.handle, verified=args.mark_verified)
        contact = messenger.store.contact(args.handle)
        sent = 0
        try:
            sent = len((await messenger.flush_outbox()).sent)  # what waited for the new key
        except RelayUnavailable:
            pass  # still queued: it goes out with the next send or inbox
        if args.json:
            print_json(
                {
                    **describe(messenger, contact),
                    "accepted": changed,
                    "released": [m.msg_id for m in released],
                    "sent": sent,
                }
            )
            return 0
        if changed:
            print(
                f"Accepted @{args.handle}'s new key. Safety number now:\n"
                f"{_indented(messenger.safety_number(contact))}"
            )
        else:
            print(f"@{args.handle}'s key has not changed: nothing to accept.")
        if args.mark_verified:
            print("Marked as verified.")
        if released:
            print(f"{len(released)} held message(s) now shown: `sealpost inbox` lists them.")
        if sent:
            print(f"{sent} queued message(s) sent, sealed to the accepted key.")
        return 0

    return run_client(args, body)
