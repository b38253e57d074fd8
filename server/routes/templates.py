"""The public template registry."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlmodel import col, select

from server import template_registry
from server.auth import CurrentAccount, DbSession
from server.errors import ApiError
from server.models import Template
from server.transactions import TransactionalRoute
from shared.api import TemplateInfo, TemplateList
from shared.identifiers import HANDLE_PATTERN
from shared.templates import TemplateDraft

SERVED_TEMPLATES_MAX = 10_000  # kept per process, then forgotten all at once

router = APIRouter(prefix="/v1/templates", tags=["templates"], route_class=TransactionalRoute)


@router.post("", status_code=201)
def register(
    draft: TemplateDraft, account: CurrentAccount, session: DbSession, request: Request
) -> TemplateInfo:
    """Register a template. A promotional "utility" template is registered as marketing and
    the answer says why (``reclassified_reason``); marketing ones get "Stop promotions"."""
    template = template_registry.register(session, account, draft, request.app.state.clock.now_ms())
    return template_registry.info(template)


@router.get("")
def list_templates(
    _: CurrentAccount,
    session: DbSession,
    business: Annotated[str, Query(pattern=HANDLE_PATTERN)],
) -> TemplateList:
    """A business's templates, oldest first."""
    rows = session.exec(
        select(Template).where(Template.business == business).order_by(col(Template.created_at))
    )
    return TemplateList(templates=[template_registry.info(t) for t in rows])


@router.get("/{template_id}", response_model=TemplateInfo)
def get_template(
    template_id: str, _: CurrentAccount, session: DbSession, request: Request
) -> Response:
    """One template: clients fetch it to render a message and check its hash."""
    # A registered template never changes: each is read and serialised once per process
    # (every recipient of a campaign asks for it).
    served: dict[str, bytes] = request.app.state.served_templates
    answer = served.get(template_id)
    if answer is None:
        template = session.get(Template, template_id)
        if template is None:
            raise ApiError(404, "unknown_template", f"No template '{template_id}'.")
        answer = template_registry.info(template).model_dump_json().encode()
        if len(served) >= SERVED_TEMPLATES_MAX:
            served.clear()
        served[template_id] = answer
    return Response(answer, media_type="application/json")
