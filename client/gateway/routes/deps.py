"""What every route needs: the running gateway, a valid bearer token, and its own ids."""

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from client.gateway.errors import INVALID_TOKEN, GraphError, unknown_object

if TYPE_CHECKING:
    from client.gateway.app import Gateway


def _gateway(request: Request) -> "Gateway":
    return request.app.state.gateway


def authorised(request: Request) -> "Gateway":
    """The gateway, once the request's bearer token (or ``access_token``) is one it issued."""
    gateway = _gateway(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        token = request.query_params.get("access_token", "")
    if not token or not gateway.tokens.valid(token.strip()):
        raise GraphError(
            INVALID_TOKEN,
            "Invalid OAuth access token - Cannot parse access token",
            "send a token issued by `sealpost gateway token --profile PROFILE` as "
            "'Authorization: Bearer TOKEN'",
            status=401,
        )
    return gateway


GatewayDep = Annotated["Gateway", Depends(authorised)]


def phone_number(gateway: "Gateway", phone_number_id: str) -> None:
    if phone_number_id != gateway.config.phone_number_id:
        raise unknown_object(phone_number_id)


def business_account(gateway: "Gateway", waba_id: str) -> None:
    if waba_id != gateway.config.waba_id:
        raise unknown_object(waba_id)
