"""Errors in the Graph API's shape, with the Cloud API's codes where one fits.

An integration written for the Cloud API branches on ``error.code`` (pywa maps each code to an
exception class), so a refusal the relay states in its own words is given the code the Cloud
API uses for the same situation, and Sealpost's sentence as the message and details.
"""

import secrets
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from client.relay_api import RelayError

# Cloud API codes the gateway answers with (developers' error-code reference).
INVALID_TOKEN = 190
UNKNOWN_PATH = 2500
INVALID_PARAMETER = 100
UNKNOWN_OBJECT_SUBCODE = 33
TEMPLATE_EXISTS_SUBCODE = 2388024
SOMETHING_WENT_WRONG = 131000
MISSING_PARAMETER = 131008
INVALID_PARAMETER_VALUE = 131009
UNDELIVERABLE = 131026
PAYMENT_ISSUE = 131042
RE_ENGAGEMENT = 131047
UNSUPPORTED_TYPE = 131051
PAIR_RATE_LIMIT = 131056
RATE_LIMIT = 130429
PARAMETER_COUNT = 132000
TEMPLATE_MISSING = 132001
PARAMETER_FORMAT = 132012
TEMPLATE_PAUSED = 132015
TEMPLATE_DISABLED = 132016


class GraphError(Exception):
    """A refusal to answer as ``{"error": {...}}`` with an HTTP status."""

    def __init__(
        self,
        code: int,
        title: str,
        details: str = "",
        *,
        status: int = 400,
        subcode: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"({code}) {title}: {details}")
        self.code = code
        self.title = title
        self.details = details
        self.status = status
        self.subcode = subcode
        self.headers = headers

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": f"(#{self.code}) {self.title}",
            "type": "OAuthException",
            "code": self.code,
            "error_data": {"messaging_product": "whatsapp", "details": self.details or self.title},
            # A fresh id per answer, as Meta's: it names this answer in a support request.
            "fbtrace_id": secrets.token_urlsafe(12),
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        return {"error": error}


def invalid_token() -> GraphError:
    return GraphError(
        INVALID_TOKEN,
        "Invalid OAuth access token - Cannot parse access token",
        "send a token issued by `sealpost gateway token --profile PROFILE` as "
        "'Authorization: Bearer TOKEN'",
        status=401,
    )


def bad_parameter(details: str) -> GraphError:
    return GraphError(INVALID_PARAMETER, "Invalid parameter", details)


def unknown_object(object_id: str) -> GraphError:
    return GraphError(
        INVALID_PARAMETER,
        f"Unsupported request - Object with ID '{object_id}' does not exist",
        f"This gateway serves one phone number and one business account; '{object_id}' is "
        "neither (`sealpost gateway token` prints both ids).",
        subcode=UNKNOWN_OBJECT_SUBCODE,
    )


# The relay's refusal codes (shared/api.py, server/routes) as the Cloud API's. Each is about
# the business or its request, never about the person: the relay refuses nothing about a
# person's choices in its answers (blocked and opted-out copies are "accepted").
_PAIR = "(Business Account, Consumer Account) pair rate limit hit"
_RELAY_CODES: dict[str, tuple[int, str, int]] = {
    "insufficient_balance": (PAYMENT_ISSUE, "Business eligibility payment issue", 400),
    "budget_exhausted": (PAYMENT_ISSUE, "Business eligibility payment issue", 400),
    "outside_service_window": (
        RE_ENGAGEMENT,
        "Re-engagement message: more than 24 hours have passed since the recipient last "
        "replied to the sender number",
        400,
    ),
    "rate_limited": (RATE_LIMIT, "Rate limit hit", 429),
    "too_many_to_recipient": (PAIR_RATE_LIMIT, _PAIR, 429),
    "too_many_requests": (PAIR_RATE_LIMIT, _PAIR, 429),
    "mailbox_full": (PAIR_RATE_LIMIT, _PAIR, 429),
    "request_pending": (
        RE_ENGAGEMENT,
        "Re-engagement message: the person has not accepted this business's messages yet",
        400,
    ),
    "unknown_template": (TEMPLATE_MISSING, "Template name does not exist in the translation", 404),
    "template_paused": (TEMPLATE_PAUSED, "Template is paused", 400),
    "template_disabled": (TEMPLATE_DISABLED, "Template is disabled", 400),
    "not_available_yet": (
        INVALID_PARAMETER,
        "Marketing messages are not open to this business yet",
        403,
    ),
    "tier_limit": (RATE_LIMIT, "Messaging limit of this business's tier reached", 429),
    "template_limit": (INVALID_PARAMETER, "Message template limit reached", 400),
}


def from_relay(exc: RelayError) -> GraphError:
    """The relay's refusal in the Cloud API's terms; its own sentence stays as the details."""
    code, title, status = _RELAY_CODES.get(
        exc.code, (SOMETHING_WENT_WRONG, "Something went wrong", 502 if exc.status >= 500 else 400)
    )
    return GraphError(code, title, f"{exc.message} [{exc.code}]", status=status)


async def graph_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GraphError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A body that does not parse: the Cloud API's invalid-parameter error, naming the field."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if errors and errors[0]["type"] == "json_invalid":
        # FastAPI's loc for a parse error is the character where it broke.
        error = errors[0]
        where = error["loc"][-1]
        why = (error.get("ctx") or {}).get("error", error["msg"])
        problems = f"the body is not valid JSON: {why}, at character {where}"
    elif content_type not in ("application/json", "") and any(
        e["loc"] == ("body",) for e in errors
    ):
        problems = (
            f"the body is {content_type or 'not JSON'}: send it as JSON, with "
            "Content-Type: application/json"
        )
    else:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in errors
        )
    graph = GraphError(INVALID_PARAMETER, "Invalid parameter", problems)
    return JSONResponse(graph.body(), status_code=400)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A path or method the gateway does not serve, in the Graph API's words."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        error = GraphError(
            UNKNOWN_PATH,
            f"Unknown path components: {request.url.path}",
            "the gateway serves /{version}/{phone-number-id}/messages and "
            "/{version}/{waba-id}/message_templates and template_analytics (docs/gateway.md)",
            status=404,
        )
    else:
        error = GraphError(
            INVALID_PARAMETER, "Unsupported request", str(exc.detail), status=exc.status_code
        )
    return JSONResponse(error.body(), status_code=error.status)
