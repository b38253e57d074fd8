"""The shuffler's HTTP app: ``POST /v1/reports`` (one report), ``GET /v1/key-log`` (the
relay's token key log, passed through) and ``GET /v1/status``."""

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from shared.auth import AUTH_HEADERS
from shared.shuffle_bound import amplify
from shared.shuffled import REPORTS_PATH, ShufflerReceipt, ShufflerReport, public_key_b64
from shared.signals import DEFAULT_REPORT_EPSILON, InvalidReport, decode_report
from shared.token_log import SHUFFLER_KEY_LOG_PATH
from shuffler.forward import Forwarder, ForwardError
from shuffler.key_log import KeyLogMirror, KeyLogUnavailable
from shuffler.keys import load_or_create
from shuffler.settings import ShufflerSettings
from shuffler.store import ReportStore

log = logging.getLogger("sealpost.shuffler")

# Anything that could tie a report to an account or a session is refused, not ignored: a
# client that sends it has a bug worth hearing about.
CREDENTIAL_HEADERS = (*AUTH_HEADERS, "Cookie", "Authorization", "Proxy-Authorization")


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class Shuffler:
    """The running parts: the store, the forwarder and the timer that wakes it."""

    def __init__(self, settings: ShufflerSettings) -> None:
        self.settings = settings
        self.store = ReportStore(settings.db)
        self.key = load_or_create(settings.key_path)
        self.forwarder = Forwarder(self.store, self.key, settings.relay, settings.batch)
        self.key_log = KeyLogMirror(settings.relay, settings.key_log_max_age_s)
        self.ready = asyncio.Event()  # at least B held: the timer may run
        self._rng = random.SystemRandom()

    @property
    def public_key(self) -> str:
        return public_key_b64(self.key)

    def forward_ready(self, *, minimum: int | None = None) -> Any:
        """Forward now if at least B (or ``minimum``) reports are held (blocking)."""
        return self.forwarder.forward_ready(minimum=minimum)

    async def run(self) -> None:
        """Forward each time B are held, at a random moment within ``max_hold_s``."""
        if self.store.count() >= self.settings.batch:  # what a previous run left
            self.ready.set()
        while True:
            await self.ready.wait()
            await asyncio.sleep(self._rng.uniform(0, self.settings.max_hold_s))
            try:
                done = await asyncio.to_thread(self.forward_ready)
                if done.batches:
                    log.info("forwarded batches of %s reports", done.batches)
            except ForwardError as exc:
                log.warning("forwarding failed, reports kept: %s", exc)
                await asyncio.sleep(self.settings.retry_s)
            # Clear, then count: a report that arrives in between is seen by the count, one
            # that arrives after sets the event again. (Count, then clear, could lose it.)
            self.ready.clear()
            if await asyncio.to_thread(self.store.count) >= self.settings.batch:
                self.ready.set()

    async def refresh_key_log(self) -> None:
        """Fetch the relay's key log on the shuffler's own timer (jittered), whatever devices
        do, so that the relay's log requests say nothing about when a report is coming."""
        while True:
            try:
                await self.key_log.refresh()
            except KeyLogUnavailable as exc:
                log.warning("could not fetch the relay's key log: %s", exc)
            await asyncio.sleep(self.settings.key_log_refresh_s * self._rng.uniform(0.5, 1.0))

    def status(self) -> dict[str, Any]:
        s = self.settings
        t = self.forwarder.totals
        local = s.local_epsilon or DEFAULT_REPORT_EPSILON
        return {
            "batch": s.batch,
            "max_hold_s": s.max_hold_s,
            "relay": s.relay,
            "public_key": self.public_key,
            # How many are held right now is left out on purpose: polling it would tell
            # anyone when each report arrived.
            "forwarded": {
                "batches": t.batches,
                "reports": t.reports,
                "counted": t.counted,
                "refused": t.refused,
                "last_batch": t.last_batch,
                "last_batch_smallest_campaign": t.last_smallest_campaign,
                "last_error": t.last_error,
            },
            "privacy": {
                "local_epsilon_per_report": round(local, 6),
                # A report names its campaign, so the crowd that hides it is the reports of
                # its campaign in the batch: B when one campaign fills a batch.
                "at_batch_size": amplify(local, s.batch, s.delta).to_json(),
                "last_batch": (
                    amplify(local, t.last_smallest_campaign, s.delta).to_json()
                    if t.last_smallest_campaign
                    else None
                ),
            },
        }


def create_app(settings: ShufflerSettings | None = None) -> FastAPI:
    settings = settings or ShufflerSettings()
    shuffler = Shuffler(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The Event belongs to the loop that serves the app.
        shuffler.ready = asyncio.Event()
        tasks = []
        if settings.auto_forward:
            tasks.append(asyncio.create_task(shuffler.run()))
        if settings.key_log_refresh_s > 0:
            tasks.append(asyncio.create_task(shuffler.refresh_key_log()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            shuffler.store.close()

    app = FastAPI(
        lifespan=lifespan,
        title="Sealpost shuffler",
        description="Holds anonymous reports and forwards them to the relay in shuffled, "
        "signed batches. See docs/protocol.md.",
    )
    app.state.shuffler = shuffler

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, "invalid_request", f"{where}: {first.get('msg', 'invalid body')}")

    @app.post(REPORTS_PATH, status_code=202)
    async def take_report(body: ShufflerReport, request: Request) -> Any:
        """One anonymous report. Kept without its arrival time or address; answered 202."""
        sent = [h for h in CREDENTIAL_HEADERS if h in request.headers]
        if sent:
            return _error(
                400,
                "credentials_on_anonymous_channel",
                f"Reports are anonymous; send them without {', '.join(sent)}.",
            )
        try:
            report = decode_report(body.report.encode())
        except InvalidReport as exc:
            return _error(422, "invalid_report", str(exc))
        if await asyncio.to_thread(shuffler.store.count) >= settings.max_held:
            return _error(503, "shuffler_full", "Too many reports held; try again later.")
        await asyncio.to_thread(shuffler.store.add, report.token_input, body.report)
        if await asyncio.to_thread(shuffler.store.count) >= settings.batch:
            shuffler.ready.set()
        return ShufflerReceipt()

    @app.get(SHUFFLER_KEY_LOG_PATH)
    async def key_log(
        request: Request,
        campaign: str | None = Query(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$"),
    ) -> Any:
        """The relay's token key log, exactly as the relay answered it, from the copy held
        for every device (fetched again first if it does not list ``campaign``)."""
        sent = [h for h in CREDENTIAL_HEADERS if h in request.headers]
        if sent:
            return _error(
                400,
                "credentials_on_anonymous_channel",
                f"The key log is fetched anonymously; send no {', '.join(sent)}.",
            )
        try:
            body = await shuffler.key_log.get(campaign)
        except KeyLogUnavailable as exc:
            return _error(502, "relay_unreachable", f"No key log from the relay: {exc}")
        return Response(body, media_type="application/json")

    @app.get("/v1/status")
    async def status() -> dict[str, Any]:
        """Batch size, what was forwarded, and the central ε shuffling gives."""
        return shuffler.status()

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
