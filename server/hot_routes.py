"""The relay's most frequent requests, served without FastAPI's per-request machinery.

Every client acks what it received, a few seconds after it arrives: with a thousand clients
connected that is hundreds of small requests a second, and on the one core a relay's Python
uses, FastAPI's routing, dependency solving and exception layers were a third of an ack's
CPU (0.35 of ~1 ms). The acks' cost is what caps the relay's sustained delivery rate.

A hot route is the same endpoint function as its FastAPI route (which stays registered, and
documents it), called the same way: the signed request checked by ``Caller`` in the one
transaction that also commits the nonce with the work (server/transactions.py), with the
same error answers (server/errors.py); requests read in the same turn of the event loop
share that transaction (server/group_commit.py). Only the plumbing is lean. A
request that does not fit the fast shape exactly (another content type, a path that does
not match) falls through to FastAPI, which answers it as it always has.
"""

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from server.auth import Caller, signed_request
from server.db import request_session
from server.errors import ApiError, error_response, unexpected_response, validation_response
from server.json_body import parse_body

log = logging.getLogger("sealpost.relay")


@dataclass(frozen=True)
class HotRoute:
    """``endpoint(<path param>=..., body=..., account=..., session=..., request=...)``."""

    method: str
    path: re.Pattern[str]  # one named group: the endpoint's path parameter
    body: type[BaseModel]
    endpoint: Callable[..., BaseModel]


class HotRoutes:
    """ASGI layer in front of the app's routes; see the module docstring."""

    def __init__(self, app: ASGIApp, routes: list[HotRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self.routes:
                if scope["method"] == route.method and _is_json(scope):
                    match = route.path.fullmatch(scope["path"])
                    if match:
                        await _serve(route, match.groupdict(), scope, receive, send)
                        return
        await self.app(scope, receive, send)


def _is_json(scope: Scope) -> bool:
    """Only a JSON body takes the lean path; anything else gets the routes' own answer (422,
    saying to send JSON), as every other endpoint gives it."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.split(b";")[0].strip().lower() == b"application/json"
    return False


async def _serve(
    route: HotRoute, params: dict[str, str], scope: Scope, receive: Receive, send: Send
) -> None:
    request = Request(scope, receive)
    try:
        body = await request.body()
        caller = Caller(signed=await signed_request(request, body), request=request)
        parsed = parse_body(route.body, body)
        with request_session(request.app.state.engine) as session:
            kwargs: dict[str, Any] = {
                **params,
                "body": parsed,
                "account": caller,
                "session": session,
                "request": request,
            }
            result = await request.app.state.group_commit.run(route.endpoint, kwargs)
        response: Response = Response(result.model_dump_json(), media_type="application/json")
    except ApiError as exc:
        response = error_response(exc.status, exc.code, exc.message, exc.headers)
    except RequestValidationError as exc:
        response = validation_response(exc)
    except Exception as exc:
        log.exception("hot route %s %s failed", scope["method"], scope["path"])
        response = unexpected_response(exc)
    await response(scope, receive, send)
