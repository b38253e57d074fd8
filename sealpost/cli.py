"""``sealpost``: the relay, accounts, messaging and the demo behind one command.

Each subcommand lives in ``sealpost/commands/<name>.py`` with ``register(subparsers)``; the
client and relay packages are imported only by the commands that need them.
"""

import argparse
import sys
from collections.abc import Sequence

from sealpost.commands import (
    account,
    audit,
    bench,
    business,
    chat,
    contact,
    demo,
    desk,
    gateway,
    messaging,
    prefs,
    relay,
    requests,
    shuffler,
    sim,
)

COMMANDS = (
    relay,
    shuffler,
    desk,
    account,
    messaging,
    contact,
    requests,
    chat,
    prefs,
    business,
    gateway,
    demo,
    bench,
    audit,
    sim,
)

EPILOG = """\
quick tour:
  sealpost demo                                   # everything, on a throwaway relay
  sealpost relay --port 8700                      # run a relay (SQLite by default)
  sealpost shuffler --relay http://127.0.0.1:8700 # batches anonymous reports for it
  sealpost account create --profile alice --handle alice \\
      --relay http://127.0.0.1:8700 --country +39
  sealpost send --profile alice --to bob "hello"
  sealpost inbox --profile bob --json

Profiles live in --home (default: the user data dir, or $SEALPOST_HOME).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sealpost",
        description="Sealpost: end-to-end encrypted business messaging, simulated.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--home", help="data directory for profiles (env SEALPOST_HOME)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `sealpost inbox | head`: the reader left, nothing to say
        sys.stderr.close()
        return 0
