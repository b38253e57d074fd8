"""``sealpost relay``: serve a relay."""

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "relay",
        help="run a relay server",
        description="Run the Sealpost relay. It stores only sealed envelopes, never plaintext.",
        epilog="examples:\n  sealpost relay\n  sealpost relay --db postgresql://postgres@127.0.0.1/"
        "sealpost --port 8701\n\nEvery option can also be set as SEALPOST_RELAY_<NAME>.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--db",
        help="database URL: sqlite:///path.db (default, in the user data "
        "dir) or postgresql://user@host/dbname",
    )
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default 8700)")
    p.set_defaults(run=run)


def run(args: Any) -> int:
    import uvicorn

    from server.app import create_app
    from server.settings import RelaySettings

    overrides = {
        k: v
        for k, v in (("db", args.db), ("host", args.host), ("port", args.port))
        if v is not None
    }
    settings = RelaySettings(**overrides)
    app = create_app(settings)
    print(f"sealpost relay on http://{settings.host}:{settings.port}  (db: {settings.db})")
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level="info", timeout_graceful_shutdown=2
    )
    return 0
