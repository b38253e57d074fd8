"""Assembles the relay: settings, database, routers, error handlers, guards."""

import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session
from starlette.requests import Request

from server import schema
from server.checkpoints import Checkpointer
from server.clock import Clock, SystemClock
from server.db import make_engine, read_engine, sqlite_write_lock
from server.dispatcher import Dispatcher
from server.errors import install_error_handlers, is_storage_full, unexpected_response
from server.figures import FiguresPolicy
from server.frames import Frame
from server.group_commit import GroupCommit
from server.hot_routes import HotRoutes
from server.json_body import with_body_schemas
from server.known_accounts import KnownAccounts
from server.mailbox import HOUR_MS, RoutingRules, pending_frames
from server.message_requests import RequestRules
from server.metrics import MetricsLayer, RelayMetrics, RouteNames, route_templates
from server.nonce_memory import NoncesInMemory
from server.notify import MailboxNotifier, PostgresWakeups
from server.pricing import load_price_table
from server.ratelimit import TokenBuckets
from server.request_guard import RequestGuard
from server.routes import (
    accounts,
    campaigns,
    health,
    mailbox,
    messages,
    prefs,
    signals,
    templates,
)
from server.settings import RelaySettings
from server.signals import publish_missing_keys
from server.transactions import caller_routes, unverified_routes
from shared.version import PROTOCOL_VERSION


def _woken_mailboxes(
    app: FastAPI,
) -> Callable[[list[str], tuple[int, int] | None], dict[str, list[Frame]] | None]:
    """For PostgresWakeups: the pending envelopes of mailboxes another relay wrote to."""

    def fetch(handles: list[str], seqs: tuple[int, int] | None) -> dict[str, list[Frame]] | None:
        with Session(app.state.read_engine) as session:
            return pending_frames(session, handles, app.state.settings.page_limit, seqs)

    return fetch


def _no_telemetry() -> dict[str, Any]:
    """FastAPI 0.165+ checks for OpenTelemetry providers on every request (reading the
    environment each time, ~2 % of a busy relay's CPU); the relay exports none. Older
    FastAPI has no such option."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def _describe_raw_bodies(app: FastAPI) -> None:
    """The API description also names the bodies parsed from bytes (server/json_body.py)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_body_schemas(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: RelaySettings | None = None, clock: Clock | None = None) -> FastAPI:
    """A ready relay app. Raises ``schema.SchemaMismatch`` unless the database is migrated
    (or ``settings.auto_migrate`` is set, as for embedded relays)."""
    settings = settings or RelaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.dispatcher.start()
        app.state.checkpointer.start()
        wakeups = None
        if app.state.engine.dialect.name == "postgresql":
            wakeups = PostgresWakeups(settings.db, app.state.notifier, fetch=_woken_mailboxes(app))
            wakeups.start()
        try:
            yield
        finally:
            app.state.shutting_down = True
            app.state.dispatcher.stop()
            app.state.checkpointer.stop()
            if wakeups:
                wakeups.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="Sealpost relay",
        version=f"protocol-{PROTOCOL_VERSION}",
        description="Routes sealed envelopes. See docs/protocol.md for the wire format.",
        **_no_telemetry(),
    )
    engine = make_engine(
        settings.db, durable=settings.durable_commits, wal_limit_bytes=settings.wal_limit_bytes
    )
    if settings.auto_migrate:
        schema.upgrade(engine)
    schema.require_current(engine, settings.db)
    # Campaigns an older relay created, or whose key a crash kept out of the token key log.
    publish_missing_keys(engine, (clock or SystemClock()).now_ms())
    app.state.settings = settings
    # Shufflers whose signed batches are counted (POST /v1/signals/shuffled).
    app.state.shuffler_keys = frozenset(settings.shuffler_keys)
    app.state.engine = engine
    app.state.read_engine = read_engine(engine)
    app.state.write_lock = sqlite_write_lock(engine)  # None on PostgreSQL
    app.state.group_commit = GroupCommit(engine, app.state.write_lock)
    app.state.clock = clock or SystemClock()
    app.state.wall_clock = SystemClock()
    app.state.notifier = MailboxNotifier()
    app.state.rate_limits = TokenBuckets(settings.rate_per_s, settings.rate_burst)
    app.state.chat_limits = TokenBuckets(settings.chat_rate_per_s, settings.chat_burst)
    app.state.registration_limits = (
        TokenBuckets(settings.registrations_per_hour / 3600, settings.registration_burst)
        if settings.registrations_per_hour
        else None
    )
    # Unsigned requests, per client address (server/request_guard.py; /metrics too).
    app.state.anonymous_limits = (
        TokenBuckets(settings.anonymous_per_s, settings.anonymous_burst)
        if settings.anonymous_per_s
        else None
    )
    app.state.nonce_inserts = 0
    app.state.nonces_in_memory = NoncesInMemory()
    app.state.accounts = KnownAccounts()
    app.state.served_templates = {}  # template id -> its TemplateInfo JSON (never changes)
    app.state.shutting_down = False
    requests = RequestRules(hold=settings.request_hold, per_day=settings.requests_per_day)
    app.state.routing = RoutingRules(
        prices=load_price_table(settings.price_table),
        service_window_ms=settings.service_window_h * HOUR_MS,
        daily_cap=settings.marketing_cap_24h,
        pair_envelopes=TokenBuckets(
            settings.chats_per_recipient_per_hour / 3600, settings.chats_per_recipient_per_hour
        ),
        pair_bytes=TokenBuckets(
            settings.chat_bytes_per_recipient_per_hour / 3600,
            settings.chat_bytes_per_recipient_per_hour,
        ),
        requests=requests,
        mailbox_envelopes=settings.mailbox_max_pending,
        mailbox_bytes=settings.mailbox_max_pending_bytes,
        template_quality=settings.template_quality,
    )
    app.state.checkpointer = Checkpointer(engine)
    app.state.dispatcher = Dispatcher(
        engine,
        app.state.clock,
        app.state.notifier,
        daily_cap=settings.marketing_cap_24h,
        interval_s=settings.dispatch_interval_s,
        figures=figures_policy(settings),
        requests=requests,
        template_quality=settings.template_quality,
    )

    app.state.figures = app.state.dispatcher.figures
    install_error_handlers(app)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, DBAPIError) or is_storage_full(exc):
            app.state.metrics.storage_errors.inc()
        return unexpected_response(exc)

    for module in (health, accounts, messages, mailbox, templates, campaigns, prefs, signals):
        app.include_router(module.router)
    # A caller is verified only by TransactionalRoute: an endpoint taking one under any other
    # route class would serve unsigned requests. Refuse to start rather than find out.
    if unverified := unverified_routes(app.routes):
        raise RuntimeError(f"routes that take a caller but do not verify it: {unverified}")
    _describe_raw_bodies(app)
    app.add_middleware(HotRoutes, routes=mailbox.HOT_ROUTES)
    # Outside HotRoutes, so that acks too are verified before their bodies are parsed.
    signed = [(route.methods or (), route.path_regex) for route in caller_routes(app.routes)]
    app.add_middleware(
        RequestGuard,
        settings=settings,
        signed_routes=signed,
        anonymous=app.state.anonymous_limits,
    )
    # Outermost: every request is counted and timed, hot routes and refusals included.
    app.state.metrics = RelayMetrics(app.state.engine, app.state.notifier.open_streams)
    if settings.metrics or settings.request_log:
        app.add_middleware(
            MetricsLayer,
            metrics=app.state.metrics,
            routes=RouteNames(route_templates(app.routes)),
            log_requests=settings.request_log,
            serve=settings.metrics,
            limits=app.state.anonymous_limits,
        )
    return app


def figures_policy(settings: RelaySettings) -> FiguresPolicy:
    return FiguresPolicy(
        after_ms=settings.figures_after_h * HOUR_MS,
        epsilon_counts=settings.figures_epsilon_counts,
        epsilon_interactions=settings.figures_epsilon_interactions,
        budget_30d=settings.business_epsilon_30d,
        template_quality=settings.template_quality,
    )
