"""``sealpost relay`` (serve a relay) and ``sealpost migrate`` (create or upgrade its schema)."""

import argparse
from typing import Any

from sealpost.commands.output import fail


def register(sub: Any) -> None:
    p = sub.add_parser(
        "relay",
        help="run a relay server",
        description="Run the Sealpost relay. It stores only sealed envelopes, never plaintext. "
        "The database must be migrated first (sealpost migrate).",
        epilog="examples:\n"
        "  sealpost migrate && sealpost relay\n"
        "  sealpost migrate --db postgresql://postgres@127.0.0.1/sealpost\n"
        "  sealpost relay --db postgresql://postgres@127.0.0.1/sealpost --port 8701\n\n"
        "Several relays may share one PostgreSQL database (see docs/deploy.md).\n"
        "Publish `sealpost relay --print-token-log-key` for devices to pin.\n"
        "Every option can also be set as SEALPOST_RELAY_<NAME>.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _db_option(p)
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default 8700)")
    p.add_argument(
        "--access-log",
        action="store_true",
        help="log every request (off by default: at scale it costs real CPU)",
    )
    p.add_argument(
        "--print-token-log-key",
        action="store_true",
        help="print the fingerprint of the key the relay signs its token key log with "
        "(created on first use, kept in the database), then exit: publish it, and devices "
        "pin it with SEALPOST_TOKEN_LOG_KEY_FINGERPRINT",
    )
    p.set_defaults(run=run)

    m = sub.add_parser(
        "migrate",
        help="create or upgrade the relay's database schema",
        description="Bring the relay database to the schema this version of Sealpost needs "
        "(SQLite or PostgreSQL). Safe to run again: it does nothing when up to date.",
    )
    _db_option(m)
    m.add_argument("--check", action="store_true", help="only report; exit 1 if not current")
    m.set_defaults(run=migrate)


def _db_option(p: Any) -> None:
    p.add_argument(
        "--db",
        help="database URL: sqlite:///path.db (default: relay.db in the user data dir) or "
        "postgresql://user@host/dbname",
    )


def _settings(args: Any, **extra: Any) -> Any:
    from server.settings import RelaySettings

    options = {"db": args.db, **extra}
    return RelaySettings(**{k: v for k, v in options.items() if v is not None})


def run(args: Any) -> int:
    import gc

    import uvicorn

    from server.app import create_app
    from server.schema import SchemaMismatch

    settings = _settings(args, host=args.host, port=args.port)
    if args.print_token_log_key:
        return _print_token_log_key(settings)
    try:
        app = create_app(settings)
    except SchemaMismatch as exc:
        return fail(str(exc))
    print(f"sealpost relay on http://{settings.host}:{settings.port}  (db: {settings.db})")
    # Everything loaded so far (modules, the app) lives as long as the process: keep it out
    # of the collector's full passes, which otherwise walked ~180,000 objects every few
    # thousand stored envelopes (a sixth of a campaign batch's CPU).
    gc.collect()
    gc.freeze()
    # And fewer passes. At Python's default (a young pass every 700 allocations) the objects
    # of requests in flight outlived their young passes, and their promotions forced a full
    # pass (50-70 ms, finding nothing) twice a second while delivering to 1,000 clients: a
    # tenth of the CPU, and the stalls behind most of the p99 latency. The relay makes few
    # reference cycles; young passes every 20,000 still collect those promptly.
    gc.set_threshold(20_000, 20, 50)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=args.access_log,
        # Clients and balancers reuse connections; 5 s (uvicorn's default) drops them under load.
        timeout_keep_alive=30,
        timeout_graceful_shutdown=2,
    )
    return 0


def _print_token_log_key(settings: Any) -> int:
    from sqlmodel import Session

    from server import schema, token_log
    from server.db import make_engine
    from shared.encoding import b64encode
    from shared.token_log import log_key_fingerprint

    engine = make_engine(settings.db)
    try:
        schema.require_current(engine, settings.db)
        with Session(engine) as session:
            key = b64encode(bytes(token_log.log_signing_key(session).verify_key))
    except schema.SchemaMismatch as exc:
        return fail(str(exc))
    finally:
        engine.dispose()
    print(log_key_fingerprint(key))
    return 0


def migrate(args: Any) -> int:
    from server import schema
    from server.db import make_engine

    settings = _settings(args)
    engine = make_engine(settings.db)
    try:
        before = schema.state(engine)
        if args.check:
            print(f"schema {before.current or 'none'}; this relay needs {before.head}")
            return 0 if before.ok else 1
        after = schema.upgrade(engine)
    finally:
        engine.dispose()
    if before.current == after.current:
        print(f"{settings.db}: already at schema {after.current}")
    else:
        print(f"{settings.db}: schema {before.current or 'none'} -> {after.current}")
    return 0
