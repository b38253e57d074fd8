"""``sealpost chat``: the terminal client for a person's profile."""

import argparse
from typing import Any

from sealpost.commands.context import home_of
from sealpost.commands.output import fail

EPILOG = """\
examples:
  sealpost chat --profile bob
  sealpost --home /tmp/sp chat --profile bob

Keys: F1 or ? help, F2 settings, F3 what is shared, Ctrl+P command palette, Ctrl+Q quit.
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
    # SUPPRESS keeps a --home given before the subcommand from being reset to None here.
    c.add_argument("--home", default=argparse.SUPPRESS, help="data directory for profiles")
    c.set_defaults(run=run)


def run(args: Any) -> int:
    from client.profile import ProfileError
    from client.tui.app import SealpostApp

    try:
        app = SealpostApp(home_of(args), args.profile)
    except ProfileError as exc:
        return fail(str(exc))
    app.run()
    return 0
