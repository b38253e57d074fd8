"""``sealpost chat``: the terminal client for a person's profile."""

import argparse
from typing import Any

from sealpost.commands.context import home_of
from sealpost.commands.output import fail

EPILOG = """\
examples:
  sealpost chat --profile bob
  sealpost chat --profile bob --relay http://127.0.0.1:8701   # another relay, this run only
  sealpost --home /tmp/sp chat --profile bob

Keys: F1 or ? help, F2 settings, F3 what is shared, F4 search messages, F5 privacy ledger,
Ctrl+N notifications for this chat (toast / bell / off), Ctrl+P command palette, Ctrl+Q quit.
The app keeps running while the relay is away ("offline, retrying") and reconnects by itself;
messages typed meanwhile are queued and sent later.
"""


def register(sub: Any) -> None:
    c = sub.add_parser(
        "chat",
        help="open the terminal client (TUI) for a profile",
        description="Open the interactive terminal client: chats, marketing messages with their "
        "buttons, blocking and promotions, live over the relay's push stream.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("--profile", required=True, help="an existing profile (sealpost account)")
    c.add_argument(
        "--relay",
        metavar="URL",
        help="use this relay instead of the profile's, for this run only (the profile is not "
        "changed)",
    )
    # SUPPRESS keeps a --home given before the subcommand from being reset to None here.
    c.add_argument("--home", default=argparse.SUPPRESS, help="data directory for profiles")
    c.set_defaults(run=run)


def run(args: Any) -> int:
    from client.profile import ProfileError
    from client.tui.app import SealpostApp

    try:
        app = SealpostApp(home_of(args), args.profile, relay_url=args.relay)
    except ProfileError as exc:
        return fail(str(exc))
    app.run()
    return 0
