"""``POST /{version}/{phone-number-id}/messages``: templates, text and reply buttons."""

from typing import Any

from fastapi import APIRouter

from client.gateway.errors import MISSING_PARAMETER, UNSUPPORTED_TYPE, GraphError
from client.gateway.recipients import resolve
from client.gateway.routes.deps import GatewayDep, phone_number
from client.gateway.shapes import SendMessage

router = APIRouter(tags=["messages"])


def _missing(field: str) -> GraphError:
    return GraphError(
        MISSING_PARAMETER, "Required parameter is missing", f"type {field} needs a '{field}' object"
    )


@router.post("/{version}/{phone_number_id}/messages")
async def send_message(
    version: str, phone_number_id: str, body: SendMessage, gateway: GatewayDep
) -> dict[str, Any]:
    phone_number(gateway, phone_number_id)
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
