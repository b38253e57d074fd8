"""Registering and looking up templates. The rules themselves live in shared.templates."""

import secrets

from sqlalchemy import func
from sqlmodel import Session, select

from server.errors import ApiError
from server.known_accounts import KnownAccount
from server.models import Template
from shared.api import TemplateInfo
from shared.templates import (
    MAX_TEMPLATES_PER_BUSINESS,
    TemplateDraft,
    finalize,
    priced_category,
    template_hash,
    validate_draft,
)


def register(
    session: Session, business: KnownAccount, draft: TemplateDraft, now_ms: int
) -> Template:
    """Validate, maybe reclassify, and store a template; 4xx naming the rule that failed."""
    if business.kind != "business":
        raise ApiError(403, "businesses_only", "Only business accounts register templates.")
    final, reason = finalize(draft)
    problems = validate_draft(final)
    if problems:
        raise ApiError(
            422, "invalid_template", "; ".join(f"[{p.rule}] {p.message}" for p in problems)
        )
    count = session.exec(
        select(func.count()).select_from(Template).where(Template.business == business.handle)
    ).one()
    if count >= MAX_TEMPLATES_PER_BUSINESS:
        raise ApiError(
            409,
            "template_limit",
            f"{business.handle} has {count} templates, the most allowed "
            f"({MAX_TEMPLATES_PER_BUSINESS}).",
        )
    clash = session.exec(
        select(Template).where(
            Template.business == business.handle,
            Template.name == final.name,
            Template.language == final.language,
        )
    ).first()
    if clash:
        raise ApiError(
            409,
            "template_exists",
            f"Template '{final.name}' ({final.language}) exists as {clash.id}; "
            "choose another name.",
        )
    template = Template(
        id=f"tpl_{secrets.token_hex(8)}",
        business=business.handle,
        name=final.name,
        language=final.language,
        category=final.category,
        requested_category=draft.category,
        reclassified_reason=reason,
        definition=final.model_dump_json(),
        hash=template_hash(business.handle, final),
        created_at=now_ms,
    )
    session.add(template)
    session.commit()
    return template


def info(template: Template) -> TemplateInfo:
    draft = TemplateDraft.model_validate_json(template.definition)
    return TemplateInfo(
        id=template.id,
        business=template.business,
        hash=template.hash,
        category=template.category,
        requested_category=template.requested_category,
        reclassified_reason=template.reclassified_reason,
        template=draft,
        created_at=template.created_at,
        priced_as=priced_category(template.category, draft),
    )
