"""``sealpost``: the relay, accounts, messaging and the demo behind one command.

Each subcommand lives in ``sealpost/commands/<name>.py`` with ``register(subparsers)``; the
client and relay packages are imported only by the commands that need them.
"""

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

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

exit status: 0 done; 1 the relay refused it, or something named does not exist; 2 a value
of the wrong shape on the command line; 3 the relay cannot be reached (nothing is lost: try
again later). With --json, an error is JSON on stdout: {"error": {"code", "message"}}.
"""


class _Parser(argparse.ArgumentParser):
    """argparse, whose usage errors are JSON on stdout when the command line asks for
    --json (as every other error is then)."""

    def error(self, message: str) -> NoReturn:
        if "--json" in sys.argv[1:] or _JSON_ARGV[0]:
            from sealpost.commands.output import print_json

            print_json({"error": {"code": "bad_input", "message": f"{self.prog}: {message}"}})
            sys.exit(2)
        super().error(message)


_JSON_ARGV = [False]  # main(argv) given --json (tests call main with their own argv)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    _JSON_ARGV[0] = argv is not None and "--json" in argv
    parser = build_parser()
    args = parser.parse_args(argv)
    from sealpost.commands import output

    output.json_errors = bool(getattr(args, "json", False))
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `sealpost inbox | head`: the reader left, nothing to say
        sys.stderr.close()
        return 0
