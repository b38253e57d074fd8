"""The business's templates, as ``/{waba-id}/message_templates`` lists, creates and deletes them.

Creating validates the template exactly as the relay will (shared/templates.py): one that
breaks a rule is answered ``REJECTED`` with Sealpost's reasons, and is kept here (not on the
relay, which never registers it) so that the listing shows it as Meta's would. One that passes
is registered and ``APPROVED`` at once, with the category Sealpost gave it: a promotional
utility template comes back MARKETING.

Deleting hides a template from the gateway (it can no longer be sent through it); the relay's
registry keeps every template, since copies already sent are checked against it.
"""

import secrets
import time
from typing import Any

from client.gateway.errors import (
    INVALID_PARAMETER,
    TEMPLATE_EXISTS_SUBCODE,
    TEMPLATE_MISSING,
    GraphError,
    from_relay,
)
from client.gateway.shapes import TemplateCreate, TemplateCreated
from client.gateway.state import GatewayState
from client.gateway.templates import cloud_status, cloud_template, draft_from_cloud
from client.relay_api import RelayAPI, RelayError
from shared.api import TemplateInfo
from shared.templates import finalize, validate_draft


class Catalog:
    def __init__(self, api: RelayAPI, business: str, state: GatewayState) -> None:
        self.api = api
        self.business = business
        self.state = state

    async def templates(self) -> list[TemplateInfo]:
        """The business's registered templates the gateway may send (not deleted here)."""
        deleted = self.state.deleted_templates()
        found = (await self.api.templates_of(self.business)).templates
        return [t for t in found if t.id not in deleted]

    async def find(self, name: str, language: str) -> TemplateInfo:
        for template in await self.templates():
            if template.template.name == name and template.template.language == language:
                return template
        raise GraphError(
            TEMPLATE_MISSING,
            "Template name does not exist in the translation",
            f"no approved template {name} in {language} (see GET message_templates)",
            status=404,
        )

    async def listing(self, name: str | None = None, status: str | None = None) -> dict[str, Any]:
        try:  # their ratings, pauses and disables (server/quality.py), as Meta lists them
            rated = {
                q["template_id"]: q
                for q in (await self.api.request("GET", "/v1/quality"))["templates"]
            }
        except RelayError:
            rated = {}
        now = int(time.time() * 1000)
        items = [
            cloud_template(t, *cloud_status(rated.get(t.id), now)) for t in await self.templates()
        ]
        for rejected in self.state.rejected_templates():
            items.append(
                {
                    "id": rejected["id"],
                    "name": rejected["name"],
                    "language": rejected["language"],
                    "status": "REJECTED",
                    "category": rejected["category"],
                    "parameter_format": "POSITIONAL",
                    "components": [],
                    "rejected_reason": "INVALID_FORMAT",
                    "sealpost_rejection": rejected["reasons"],
                }
            )
        if name:
            items = [i for i in items if name in i["name"]]
        if status:
            wanted = {s.strip().upper() for s in status.split(",")}
            items = [i for i in items if i["status"] in wanted]
        return {
            "data": items,
            "paging": {"cursors": {"before": "", "after": ""}},
            "summary": {
                "total_count": len(items),
                "message_template_count": len(items),
                "message_template_limit": 250,
                "are_translations_complete": True,
            },
        }

    async def create(self, body: TemplateCreate) -> TemplateCreated:
        translation = draft_from_cloud(body)
        problems = translation.problems
        if translation.draft is not None:
            problems = validate_draft(finalize(translation.draft)[0])
        if problems or translation.draft is None:
            template_id = f"rej_{secrets.token_hex(8)}"
            reasons = [f"[{p.rule}] {p.message}" for p in problems]
            self.state.reject_template(
                template_id, body.name, body.language, body.category, reasons
            )
            return TemplateCreated(id=template_id, status="REJECTED", category=body.category)
        try:
            info = await self.api.register_template(translation.draft)
        except RelayError as exc:
            if exc.code == "template_exists":
                raise GraphError(
                    INVALID_PARAMETER,
                    "Message template already exists",
                    f"{exc.message} A deleted template's name and language stay taken: the "
                    "registry keeps every template a copy may have used.",
                    subcode=TEMPLATE_EXISTS_SUBCODE,
                ) from exc
            raise from_relay(exc) from exc
        return TemplateCreated(id=info.id, status="APPROVED", category=info.category.upper())

    async def delete(self, name: str, template_id: str | None) -> int:
        """Hide the templates of this name (or only ``template_id``); how many were hidden."""
        hidden = 0
        for template in await self.templates():
            if template.template.name == name and template_id in (None, template.id):
                self.state.delete_template(template.id)
                hidden += 1
        rejected = {
            r["id"]
            for r in self.state.rejected_templates()
            if r["name"] == name and template_id in (None, r["id"])
        }
        self.state.forget_rejected(rejected)
        hidden += len(rejected)
        if not hidden:
            raise GraphError(
                TEMPLATE_MISSING,
                "Template name does not exist in the translation",
                f"no template named {name}" + (f" with id {template_id}" if template_id else ""),
                status=404,
            )
        return hidden
