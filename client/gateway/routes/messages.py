"""``POST /{version}/{phone-number-id}/messages``: templates, text and reply buttons, and
marking a received message read."""

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from client.gateway.errors import (
    INVALID_PARAMETER_VALUE,
    MISSING_PARAMETER,
    UNSUPPORTED_TYPE,
    GraphError,
)
from client.gateway.recipients import resolve
from client.gateway.routes.deps import GatewayDep, phone_number
from client.gateway.sending import WAMID_PREFIX
from client.gateway.shapes import SendMessage

if TYPE_CHECKING:
    from client.gateway.app import Gateway

router = APIRouter(tags=["messages"])


def _missing(field: str) -> GraphError:
    return GraphError(
        MISSING_PARAMETER, "Required parameter is missing", f"type {field} needs a '{field}' object"
    )


def mark_read(gateway: "Gateway", body: SendMessage) -> dict[str, Any]:
    """``status: read``: the business has read a message a person sent it. Marked in the
    business's own store; nothing goes to the person (Sealpost has no read receipts, and a
    typing indicator has nothing to show on), so nothing about it can come back either."""
    if body.status != "read":
        raise GraphError(
            INVALID_PARAMETER_VALUE,
            "Parameter value is not valid",
            f"status {body.status}: a business marks messages 'read'",
        )
    message_id = (body.message_id or "").removeprefix(WAMID_PREFIX)
    stored = gateway.messenger.store.message(message_id) if message_id else None
    if stored is None or stored.direction != "in":
        raise GraphError(
            INVALID_PARAMETER_VALUE,
            "Parameter value is not valid",
            "message_id is not the id of a message this business received (the 'id' of a "
            "messages webhook)",
        )
    gateway.messenger.store.mark_read(stored.peer)
    return {"success": True}


@router.post("/{version}/{phone_number_id}/messages")
async def send_message(
    version: str, phone_number_id: str, body: SendMessage, gateway: GatewayDep
) -> dict[str, Any]:
    phone_number(gateway, phone_number_id)
    if body.status is not None:
        return mark_read(gateway, body)
    gateway.mapping.refresh()  # numbers mapped since the gateway started
    recipient = resolve(gateway.config, body)
    tracker = body.biz_opaque_callback_data
    outbound = gateway.outbound
    if body.type == "template":
        if body.template is None:
            raise _missing("template")
        template = await gateway.catalog.find(body.template.name, body.template.language.code)
        answer = await outbound.template(recipient, body.template, template, tracker)
    elif body.type == "text":
        if body.text is None:
            raise _missing("text")
        answer = await outbound.text(recipient, body.text.body, tracker)
    elif body.type == "interactive":
        if body.interactive is None:
            raise _missing("interactive")
        answer = await outbound.interactive(recipient, body.interactive, tracker)
    else:
        raise GraphError(
            UNSUPPORTED_TYPE,
            "Message type unknown",
            f"type {body.type}: the gateway sends template, text and interactive (reply "
            "buttons); Sealpost messages carry no media, locations or reactions",
        )
    return answer.model_dump(exclude_none=True)
