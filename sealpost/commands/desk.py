"""``sealpost desk create``: the relay operator sets up the moderation desk.

Reports are sealed to the desk, so its handle is reserved: nobody can register it, or a
look-alike, through the relay's public endpoint (server/reserved_handles.py). The operator,
who holds the relay's database, creates the desk's keys and profile here and writes its
account straight into the database; then publishes the fingerprint this prints, which each
client pins (SEALPOST_MODERATION_KEY_FINGERPRINT) before it seals a report.
"""

import argparse
import time
from pathlib import Path
from typing import Any

from sealpost.commands.context import home_of
from sealpost.commands.output import fail, print_json

FINGERPRINT_ENV = "SEALPOST_MODERATION_KEY_FINGERPRINT"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "desk",
        help="set up the moderation desk (relay operators)",
        description="The moderation desk is a platform account: only the relay's operator "
        "can create it, and clients pin its key fingerprint before sealing a report to it.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = actions.add_parser(
        "create",
        help="create the desk's keys and profile, and register it in the relay's database",
        epilog="example:\n  sealpost desk create --db sqlite:///relay.db --profile desk "
        "--relay http://127.0.0.1:8700\n  export SEALPOST_MODERATION_KEY_FINGERPRINT=<printed>",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("--db", required=True, help="the relay's database URL (as for `sealpost relay`)")
    c.add_argument("--profile", required=True, help="local profile name for the desk's keys")
    c.add_argument("--relay", required=True, help="relay URL the desk's client will use")
    c.add_argument("--handle", default="moderation", help="the desk's handle (reserved)")
    c.add_argument("--name", default="Moderation desk", help="display name")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(run=create)


def create_desk(
    home: Path, profile: str, handle: str, relay_url: str, engine: Any, name: str
) -> str:
    """Create the desk's keys and profile and register it in ``engine``'s database; returns
    the fingerprint clients pin. Nothing is written locally unless the relay's row was."""
    from client.profile import ProfileInfo, create_profile, profile_dir
    from server import reserved_handles
    from shared.keys import AccountKeys

    profile_dir(home, profile)  # validates the name first
    keys = AccountKeys.generate()
    fingerprint = reserved_handles.register(
        engine, handle, name, keys.public.sign_b64, keys.public.box_b64, int(time.time() * 1000)
    )
    info = ProfileInfo(
        name=profile, handle=handle, relay_url=relay_url, kind="business", display_name=name
    )
    create_profile(home, info, keys)
    return fingerprint


def create(args: Any) -> int:
    from client.profile import ProfileError
    from server import reserved_handles, schema
    from server.db import make_engine

    engine = make_engine(args.db)
    try:
        schema.require_current(engine, args.db)
        fingerprint = create_desk(
            home_of(args), args.profile, args.handle, args.relay, engine, args.name
        )
    except (schema.SchemaMismatch, reserved_handles.ReservedHandleError, ProfileError) as exc:
        return fail(str(exc))
    finally:
        engine.dispose()
    if args.json:
        print_json({"handle": args.handle, "profile": args.profile, "fingerprint": fingerprint})
    else:
        print(f"created the moderation desk @{args.handle} (profile '{args.profile}')")
        print("clients pin its key before sealing a report to it:")
        print(f"  export {FINGERPRINT_ENV}={fingerprint}")
    return 0
