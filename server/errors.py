"""One error shape for every rejection: ``{"error": {"code": ..., "message": ...}}``."""

import errno

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.api import ErrorBody, ErrorDetail


class ApiError(Exception):
    """Raise anywhere in a request to answer with a clear 4xx."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=message))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def describe_validation(errors: list[dict]) -> tuple[str, str]:
    """Turn pydantic's error list into (code, one readable sentence)."""
    if any(e.get("type") == "json_invalid" for e in errors):
        return "malformed_json", "The request body is not valid JSON."
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "invalid_request", "; ".join(parts) + more


def validation_response(exc: RequestValidationError) -> JSONResponse:
    """The answer to a request whose JSON, body, path or query does not fit its schema."""
    code, message = describe_validation(list(exc.errors()))
    return error_response(400 if code == "malformed_json" else 422, code, message)


STORAGE_FULL_MESSAGE = (
    "The relay's storage is full: nothing new can be stored until its operator frees space. "
    "What this request would have stored was not; send it again later (mail already stored "
    "can still be read; acknowledging it waits for space too)."
)


def is_storage_full(exc: BaseException) -> bool:
    """A write the database refused for want of space: SQLite's SQLITE_FULL, PostgreSQL's
    disk_full (53100), or the operating system's ENOSPC."""
    cause = getattr(exc, "orig", None) or exc
    if getattr(cause, "sqlstate", None) == "53100":
        return True
    if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
        return True
    text = str(cause).lower()
    return "database or disk is full" in text or "no space left on device" in text


def unexpected_response(exc: Exception) -> JSONResponse:
    """The answer when the relay itself failed (the details go to its log, not the client);
    a full disk is named, with what to do."""
    if is_storage_full(exc):
        return error_response(507, "storage_full", STORAGE_FULL_MESSAGE)
    return error_response(500, "internal_error", f"The relay failed: {type(exc).__name__}.")


_STATUS_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


JSON_TYPE = "application/json"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        sent = request.headers.get("content-type", "")
        if request.method in ("POST", "PUT") and sent.split(";")[0].strip() != JSON_TYPE:
            # FastAPI does not read a body of another type as JSON, and pydantic then says
            # the body is "not a valid dictionary": say what to send instead.
            return error_response(
                422,
                "invalid_request",
                f"Send the body as JSON, with Content-Type: {JSON_TYPE} (it came "
                f"{'as ' + repr(sent) if sent else 'without one'}).",
            )
        return validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI could not even decode the body
            return error_response(
                400, "malformed_json", "The request body is not valid JSON (or not UTF-8)."
            )
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(DataError)
    async def _unstorable(_: Request, exc: DataError) -> JSONResponse:
        # Input the schemas let through but the database refuses (a last line of defence).
        return error_response(
            422, "invalid_request", f"A value cannot be stored: {str(exc.orig).splitlines()[0]}"
        )
