"""``sealpost shuffler``: run the shuffler between devices and the relay."""

import argparse
from pathlib import Path
from typing import Any

from sealpost.commands.output import fail

DESCRIPTION = """\
Run the shuffler: a process of its own, operated apart from the relay, that devices send
their anonymous interaction reports to, one report per request.

It keeps each report without its arrival time or sender's address (a row holds the report
and a random order key, nothing else). Once it holds at least B reports from distinct tokens
(--batch), it waits a random moment of up to --max-hold seconds, shuffles everything it holds
and forwards it to the relay in one batch signed with its own Ed25519 key. It forgets a
report only after the relay has accepted its batch, so a crash loses nothing; a resent report
is refused by the relay as token_spent, never counted twice.

The relay then reads reports but never sees when or from where one came; the shuffler sees
when one came but learns nothing the relay could not. The two must be run by parties that do
not collude (docs/deploy.md says what breaks if they do). GET /v1/status shows the batch size,
what was forwarded, and the central epsilon that shuffling B reports gives next to the local
epsilon of one report (Feldman, McMillan and Talwar 2021).
"""

EPILOG = """\
setting it up with a relay:
  sealpost shuffler --print-key                       # create the key, print its public half
  SEALPOST_RELAY_SHUFFLER_KEYS=<that key> \\
  SEALPOST_RELAY_SHUFFLER_URL=http://127.0.0.1:8710 sealpost relay
  sealpost shuffler --relay http://127.0.0.1:8700 --port 8710 --batch 20
  # devices: SEALPOST_SHUFFLER_URL=http://127.0.0.1:8710 (or --shuffler on account create)

  curl -s http://127.0.0.1:8710/v1/status             # batch, forwarded, central epsilon

Every option can also be set as SEALPOST_SHUFFLER_<NAME> (e.g. SEALPOST_SHUFFLER_BATCH=50).
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "shuffler",
        help="run the shuffler that batches anonymous reports for the relay",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default 8710)")
    p.add_argument(
        "--db",
        type=Path,
        help="its own SQLite file (default: shuffler.db in the "
        "user data dir); never the relay's database",
    )
    p.add_argument("--relay", help="the relay's URL (default http://127.0.0.1:8700)")
    p.add_argument(
        "--batch",
        type=int,
        help="B: reports from distinct tokens held before any is forwarded (default 20); the "
        "relay never gets a batch of fewer. Larger B hides each report in a larger crowd and "
        "delays reports longer",
    )
    p.add_argument(
        "--max-hold",
        type=float,
        dest="max_hold_s",
        help="once B are held, forward within this many seconds, at a random moment (default 300)",
    )
    p.add_argument(
        "--key",
        type=Path,
        dest="key_path",
        help="its Ed25519 signing key file "
        "(default: shuffler.key in the user data dir; created 0600 if missing)",
    )
    p.add_argument(
        "--print-key",
        action="store_true",
        help="print the public key to give the relay (SEALPOST_RELAY_SHUFFLER_KEYS) and exit",
    )
    p.set_defaults(run=run)


def _settings(args: Any) -> Any:
    from shuffler.settings import ShufflerSettings

    options = {
        name: getattr(args, name)
        for name in ("host", "port", "db", "relay", "batch", "max_hold_s", "key_path")
    }
    return ShufflerSettings(**{k: v for k, v in options.items() if v is not None})


def run(args: Any) -> int:
    import uvicorn
    from pydantic import ValidationError

    from shared.shuffled import public_key_b64
    from shuffler.app import create_app
    from shuffler.keys import load_or_create

    try:
        settings = _settings(args)
    except ValidationError as exc:
        return fail(str(exc.errors()[0]["msg"]) + f" ({exc.errors()[0]['loc'][0]})")
    if args.print_key:
        print(public_key_b64(load_or_create(settings.key_path)))
        return 0
    app = create_app(settings)
    shuffler = app.state.shuffler
    print(
        f"sealpost shuffler on http://{settings.host}:{settings.port} -> {settings.relay}  "
        f"(batch {settings.batch}, db {settings.db})\n"
        f"public key: {shuffler.public_key}  (the relay needs it in "
        "SEALPOST_RELAY_SHUFFLER_KEYS)"
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,  # an access log would write down who sent a report, and when
        timeout_graceful_shutdown=2,
    )
    return 0
