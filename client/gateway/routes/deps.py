"""What every route needs: the running gateway, a valid bearer token, and its own ids."""

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from client.gateway.errors import invalid_token, unknown_object
from client.gateway.tokens import presented

if TYPE_CHECKING:
    from client.gateway.app import Gateway


def _gateway(request: Request) -> "Gateway":
    return request.app.state.gateway


def authorised(request: Request) -> "Gateway":
    """The gateway, once the request's bearer token (or ``access_token``) is one it issued.

    client/gateway/guard.py has checked it already, before the body was read; checked again
    here so that no route can be served without it, whatever wraps the app."""
    gateway = _gateway(request)
    token = presented(request.headers, request.url.query)
    if not token or not gateway.tokens.valid(token):
        raise invalid_token()
    return gateway


GatewayDep = Annotated["Gateway", Depends(authorised)]


def phone_number(gateway: "Gateway", phone_number_id: str) -> None:
    if phone_number_id != gateway.config.phone_number_id:
        raise unknown_object(phone_number_id)


def business_account(gateway: "Gateway", waba_id: str) -> None:
    if waba_id != gateway.config.waba_id:
        raise unknown_object(waba_id)
