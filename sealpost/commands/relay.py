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
        help="one JSON line per request on stderr: method, route template, status, "
        "milliseconds; never a body, header, handle or address (off by default: at scale "
        "it costs real CPU). Prometheus metrics are at GET /metrics either way",
    )
    p.add_argument(
        "--print-token-log-key",
        action="store_true",
        help="print the fingerprint of the key the relay signs its token key log with "
        "(created on first use, kept in the database), then exit: publish it, and devices "
        "pin it with SEALPOST_TOKEN_LOG_KEY_FINGERPRINT",
    )
    p.set_defaults(run=run)
    actions = p.add_subparsers(dest="relay_action", metavar="{rollout}")
    r = actions.add_parser(
        "rollout",
        help="open a platform feature to beta testers and a share of accounts",
        description="Show or change how far a platform feature is open. An account has it "
        "when it is a beta tester, or when its bucket (0-99, stable: drawn from its handle) is "
        "below the share; widening the share keeps everyone who had it. Without a rollout a "
        "feature is open to every account. Accounts without it are told, in words, that it is "
        "not available to them yet. Writes the relay's database; running relays see the "
        "change on their next request.",
        epilog="examples:\n"
        "  sealpost relay rollout                          # every feature, how far it is open\n"
        "  sealpost relay rollout marketing 0% --beta acme # beta testers only\n"
        "  sealpost relay rollout marketing 10%            # and one account in ten\n"
        "  sealpost relay rollout marketing --remove-beta acme\n"
        "  sealpost relay rollout marketing 100%           # everyone\n\n"
        "features: marketing (a business's marketing campaigns; utility and authentication "
        "messages are never held back)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _db_option(r)
    r.add_argument("feature", nargs="?", help="the feature: marketing")
    r.add_argument("share", nargs="?", help="the share of accounts that have it, e.g. 10%%")
    r.add_argument("--beta", action="append", default=[], metavar="HANDLE", help="add a tester")
    r.add_argument(
        "--remove-beta", action="append", default=[], metavar="HANDLE", help="remove a tester"
    )
    r.set_defaults(run=rollout_command)

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

    from server.app import create_app
    from server.http_protocol import guarded_protocol
    from server.schema import SchemaMismatch
    from server.serving import serve

    settings = _settings(
        args, host=args.host, port=args.port, request_log=True if args.access_log else None
    )
    if args.print_token_log_key:
        return _print_token_log_key(settings)
    try:
        app = create_app(settings)
    except SchemaMismatch as exc:
        return fail(str(exc))
    print(f"sealpost relay on http://{settings.host}:{settings.port}  (db: {settings.db})")
    _open_files_for(settings.max_connections)
    if settings.request_log:
        import logging
        import sys

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access = logging.getLogger("sealpost.access")
        access.addHandler(handler)
        access.setLevel(logging.INFO)
        access.propagate = False
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
    serve(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,  # the relay's own JSON line instead (server/metrics.py)
        # Clients and balancers reuse connections; 5 s (uvicorn's default) drops them under load.
        timeout_keep_alive=30,
        # httptools, with limits on request heads, slow clients (both ways) and connections.
        http=guarded_protocol(
            max_head_bytes=settings.max_header_bytes,
            head_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            max_connections=settings.max_connections,
            send_timeout_s=settings.send_timeout_s,
        ),
    )
    return 0


def _open_files_for(connections: int) -> None:
    """Raise the process's open-file limit to fit ``connections`` (a distribution's soft
    default is often 1,024, below which accepting fails with EMFILE long before the relay's
    own cap answers 503), as far as the hard limit allows; say so when it does not."""
    import resource

    want = connections + 256  # the database, the log, the listening socket
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= want:
        return
    new = want if hard == resource.RLIM_INFINITY else min(want, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    if new < want:
        print(
            f"warning: the open-file limit ({hard}) is below max_connections ({connections}) "
            "plus room for the database; lower SEALPOST_RELAY_MAX_CONNECTIONS or raise the "
            "limit (ulimit -n, LimitNOFILE=)"
        )


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


def rollout_command(args: Any) -> int:
    import time

    from sqlmodel import Session

    from server import rollout, schema
    from server.db import make_engine

    if args.feature is not None and args.feature not in rollout.FEATURES:
        return fail(f"no feature {args.feature!r}; features: {', '.join(rollout.FEATURES)}", 2)
    percent = None
    if args.share is not None:
        text = args.share.strip().rstrip("%").strip()
        if not text.isdigit() or not 0 <= int(text) <= 100:
            return fail(f"the share is a percentage between 0 % and 100 %, not {args.share!r}", 2)
        percent = int(text)
    if args.feature is None and (percent is not None or args.beta or args.remove_beta):
        return fail("name the feature to change: sealpost relay rollout marketing ...", 2)
    settings = _settings(args)
    engine = make_engine(settings.db)
    try:
        schema.require_current(engine, settings.db)
        with Session(engine) as session:
            if args.feature is not None:
                if percent is not None:
                    rollout.set_share(session, args.feature, percent, int(time.time() * 1000))
                for handle in args.beta:
                    rollout.set_beta(session, args.feature, handle, True)
                for handle in args.remove_beta:
                    rollout.set_beta(session, args.feature, handle, False)
                session.commit()
            for feature in [args.feature] if args.feature else list(rollout.FEATURES):
                print(rollout.state(session, feature).describe())
    except schema.SchemaMismatch as exc:
        return fail(str(exc))
    finally:
        engine.dispose()
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
