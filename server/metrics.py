"""What an operator watches: ``GET /metrics`` in Prometheus's text format, and one JSON log
line per request.

Nothing here names a person. Requests are counted by the route's template
(``/v1/mailboxes/{handle}``, never the handle), method and status; the database figures are
totals (envelopes waiting, campaign copies by state). The log line holds the same fields and
the time taken: no body, header, handle, key or address.

Counters live in a registry of the app's own, so several relays in one process (tests, the
simulator) keep their figures apart. The database figures are read when Prometheus scrapes,
not on every request.
"""

import json
import logging
import re
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import error_response
from server.models import MailboxEntry
from server.ratelimit import TokenBuckets, retry_after_header

METRICS_PATH = "/metrics"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
access_log = logging.getLogger("sealpost.access")
_MAILBOX = MailboxEntry.__table__  # type: ignore[attr-defined]


class RelayMetrics:
    """The relay's counters and the collector of its database figures."""

    def __init__(self, engine: Engine, open_streams: Any) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "sealpost_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sealpost_request_seconds",
            "Time to answer a request (a stream: how long it stayed open), by route template",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60),
        )
        self.storage_errors = Counter(
            "sealpost_storage_errors",
            "Requests that failed on the database (a full disk, a lost connection)",
            registry=self.registry,
        )
        self.registry.register(_DatabaseFigures(engine, open_streams))


class _DatabaseFigures(Collector):
    """Read at each scrape: envelopes waiting, campaign copies by state, open streams."""

    def __init__(self, engine: Engine, open_streams: Any) -> None:
        self.engine = engine
        self.open_streams = open_streams

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []  # read only when scraped: no query at registration

    def collect(self) -> Iterable[GaugeMetricFamily]:
        streams = GaugeMetricFamily(
            "sealpost_open_streams", "Delivery streams open on this relay process"
        )
        streams.add_metric([], self.open_streams())
        yield streams
        copies = GaugeMetricFamily(
            "sealpost_envelopes",
            "Envelopes the relay holds, by state (pending: the mailboxes' backlog) and kind",
            labels=["state", "kind"],
        )
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(_MAILBOX.c.state, _MAILBOX.c.kind, func.count()).group_by(
                    _MAILBOX.c.state, _MAILBOX.c.kind
                )
            )
            for state, kind, count in rows:
                copies.add_metric([state, kind], count)
        yield copies


def route_templates(routes: Iterable[Any]) -> list[str]:
    """Every route's path template, included routers' too (FastAPI 0.165 includes lazily)."""
    found: list[str] = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            found += route_templates(included.routes)
        elif isinstance(getattr(route, "path", None), str):
            found.append(route.path)
    return found


class RouteNames:
    """A request path to its route's template, from the app's own routes ("other" for a path
    no route has: unknown paths must not grow the metrics)."""

    def __init__(self, templates: Iterable[str]) -> None:
        self._patterns = [
            (re.compile(re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"), template)
            for template in sorted(set(templates), key=len, reverse=True)
        ]
        self._cache: dict[str, str] = {}

    def of(self, path: str) -> str:
        name = self._cache.get(path)
        if name is None:
            name = next((t for pattern, t in self._patterns if pattern.match(path)), "other")
            if len(self._cache) < 10_000:  # paths carry handles and ids: keep the cache bounded
                self._cache[path] = name
        return name


class MetricsLayer:
    """ASGI layer outside everything (hot routes included): counts and times each request,
    writes its log line when the access log is on, and answers ``GET /metrics``."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: RelayMetrics,
        routes: RouteNames,
        log_requests: bool,
        serve: bool = True,
        limits: TokenBuckets | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes
        self.log_requests = log_requests
        self.serve = serve
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.serve and scope["path"] == METRICS_PATH and scope["method"] == "GET":
            # Unsigned, and each scrape counts the mailbox table: an address pays for it as
            # for any unsigned request (server/request_guard.py).
            client = scope.get("client")
            wait = self.limits.take(client[0] if client else "unknown") if self.limits else 0
            if wait:
                refusal = error_response(
                    429,
                    "rate_limited",
                    f"Too many unsigned requests from this address; retry after {wait:.0f} s.",
                    retry_after_header(wait),
                )
                await refusal(scope, receive, send)
            else:
                await _send_metrics(self.metrics, send)
            return
        started = time.perf_counter()
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            seconds = time.perf_counter() - started
            route = self.routes.of(scope["path"])
            method = scope["method"]
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route).observe(seconds)
            if self.log_requests:
                access_log.info(
                    json.dumps(
                        {
                            "at": round(time.time(), 3),
                            "method": method,
                            "route": route,
                            "status": status,
                            "ms": round(seconds * 1000, 2),
                        },
                        separators=(",", ":"),
                    )
                )


async def _send_metrics(metrics: RelayMetrics, send: Send) -> None:
    body = generate_latest(metrics.registry)
    headers = [
        (b"content-type", CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
