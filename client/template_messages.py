"""Turning a received template message into what the person sees, after checking its label.

The sealed payload names a template and its hash; the template itself comes from the public
registry. The client recomputes the hash from the registry's template, so neither the relay
nor the business can swap the text, and it takes the label (Marketing, Utility, ...) from the
template, checked against the envelope, so the label can be neither forged nor stripped.
"""

import contextlib
from dataclasses import dataclass

from client.relay_api import RelayAPI, RelayError, RelayUnavailable
from client.store import CachedTemplate, LocalStore
from shared.envelope import Envelope, TemplatePayload
from shared.seal import VerificationError
from shared.templates import (
    RenderedTemplate,
    TemplateDraft,
    TemplateRenderError,
    promotional_terms,
    render,
    template_hash,
)

LABELS = {"marketing": "Marketing", "utility": "Utility", "authentication": "Authentication"}


@dataclass(frozen=True)
class ShownTemplate:
    text: str
    label: str
    rendered: RenderedTemplate


def _mismatch(detail: str) -> VerificationError:
    return VerificationError("template_mismatch", detail)


async def _template(api: RelayAPI, store: LocalStore, template_id: str) -> CachedTemplate:
    cached = store.template(template_id)
    if cached:
        return cached
    try:
        info = await api.template(template_id)
    except RelayError as exc:
        if exc.code == "unknown_template":
            raise _mismatch(f"template {template_id} is not in the registry") from exc
        raise
    # The hash is recomputed here, never taken from the registry's answer; an answer whose
    # text does not match its own published hash is refused and not cached.
    computed = template_hash(info.business, info.template)
    if computed != info.hash:
        raise _mismatch(f"the registry's copy of {template_id} does not match its hash")
    fetched = CachedTemplate(
        id=info.id,
        business=info.business,
        hash=computed,
        definition=info.template.model_dump_json(),
    )
    store.save_template(fetched)
    return fetched


async def prefetch_template(api: RelayAPI, store: LocalStore, template_id: str) -> None:
    """Fetch and cache a template ahead of rendering (many messages may use it). Problems
    are left for :func:`show_template_message` to report, message by message."""
    with contextlib.suppress(VerificationError, RelayError, RelayUnavailable):
        await _template(api, store, template_id)


async def show_template_message(
    api: RelayAPI, store: LocalStore, envelope: Envelope, payload: TemplatePayload
) -> ShownTemplate:
    """Render a verified template payload, or raise ``VerificationError(template_mismatch)``."""
    content = payload.content
    if envelope.template_id != content.template_id:
        raise _mismatch(f"envelope names {envelope.template_id}, payload {content.template_id}")
    if envelope.campaign_id != content.campaign_id:
        # The business signed its campaign id: a relay that moved this copy into another
        # campaign (to single the person out in its figures or tokens) is caught here.
        raise VerificationError(
            "campaign_mismatch",
            f"signed for campaign {content.campaign_id}, delivered as {envelope.campaign_id}",
        )
    cached = await _template(api, store, content.template_id)
    if cached.business != envelope.sender:
        raise _mismatch(f"template {cached.id} belongs to {cached.business}, not the sender")
    if cached.hash != content.template_hash:
        raise _mismatch("the sealed template hash does not match the registered template")
    draft = TemplateDraft.model_validate_json(cached.definition)
    if draft.category != envelope.category:
        raise _mismatch(
            f"envelope labelled {envelope.category}, template registered as {draft.category}"
        )
    try:
        rendered = render(draft, content.variables)
    except TemplateRenderError as exc:
        raise _mismatch(str(exc)) from exc
    text = "\n\n".join(part for part in (rendered.header, rendered.body, rendered.footer) if part)
    label = LABELS[draft.category]
    if draft.category == "utility" and promotional_terms(text):
        # Variables are sealed, so the registry never saw them: promotion smuggled in through
        # a variable is still shown for what it is.
        label = "Marketing (promotional text in a utility message)"
    return ShownTemplate(text=text, label=label, rendered=rendered)
