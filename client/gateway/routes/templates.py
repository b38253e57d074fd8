"""``/{version}/{waba-id}/message_templates`` and ``/{version}/{waba-id}/template_analytics``.

A relay refusal or absence raised below is answered in the Graph API's shape by the app's
handlers (client/gateway/app.py)."""

from typing import Any

from fastapi import APIRouter

from client.gateway.analytics import template_analytics
from client.gateway.errors import MISSING_PARAMETER, GraphError
from client.gateway.routes.deps import GatewayDep, business_account
from client.gateway.shapes import TemplateCreate

router = APIRouter(tags=["templates"])


@router.get("/{version}/{waba_id}/message_templates")
async def list_templates(
    version: str,
    waba_id: str,
    gateway: GatewayDep,
    name: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    business_account(gateway, waba_id)
    return await gateway.catalog.listing(name=name, status=status)


@router.post("/{version}/{waba_id}/message_templates")
async def create_template(
    version: str, waba_id: str, body: TemplateCreate, gateway: GatewayDep
) -> dict[str, Any]:
    business_account(gateway, waba_id)
    return (await gateway.catalog.create(body)).model_dump()


@router.delete("/{version}/{waba_id}/message_templates")
async def delete_template(
    version: str,
    waba_id: str,
    gateway: GatewayDep,
    name: str | None = None,
    hsm_id: str | None = None,
) -> dict[str, Any]:
    business_account(gateway, waba_id)
    if not name:
        raise GraphError(MISSING_PARAMETER, "Required parameter is missing", "give ?name=")
    await gateway.catalog.delete(name, hsm_id)
    return {"success": True}


@router.get("/{version}/{waba_id}/template_analytics")
async def analytics(
    version: str,
    waba_id: str,
    gateway: GatewayDep,
    template_ids: str | None = None,
    start: int | None = None,
    end: int | None = None,
    granularity: str = "DAILY",
) -> dict[str, Any]:
    business_account(gateway, waba_id)
    return await template_analytics(gateway.messenger.api, template_ids, start, end)
