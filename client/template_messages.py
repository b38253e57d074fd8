"""Turning a received template message into what the person sees, after checking its label.

The sealed payload names a template and its hash; the template itself comes from the public
registry. The client recomputes the hash from the registry's template, so neither the relay
nor the business can swap the text, and it takes the label (Marketing, Utility, ...) from the
template, checked against the envelope, so the label can be neither forged nor stripped.

The variables were sealed, so no one but this device checks them: each must be of the type the
template declares (a code, a number, ...), or the copy is quarantined (``bad_variable``). And
a utility or authentication copy whose rendered text promotes is marketing here: labelled so,
and hidden when the person's own choices would have refused it (client/local_choices.py).
"""

import contextlib
import time
from dataclasses import dataclass

from client import local_choices
from client.relay_api import RelayAPI, RelayError, RelayUnavailable
from client.store import CachedTemplate, LocalStore
from shared.envelope import Envelope, TemplatePayload
from shared.seal import VerificationError
from shared.templates import (
    RenderedTemplate,
    TemplateDraft,
    TemplateRenderError,
    authentication_problems,
    promotional_terms,
    render,
    template_hash,
    variable_problems,
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
    """Render a verified template payload, or raise ``VerificationError`` with the reason it is
    held back: ``template_mismatch``, ``campaign_mismatch``, ``bad_variable`` (a value not of
    its declared type) or ``hidden_by_choice`` (promotional text the person's choices refuse).
    Raises RelayError or RelayUnavailable when the registry or the person's choices cannot be
    read now: the copy then waits for the next sync."""
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
    if draft.category == "authentication":
        # The relay refuses any other shape at registration; a relay that did not is caught
        # here, as an authentication label on free text is how promotions got past choices.
        shape = authentication_problems(draft)
        if shape:
            raise _mismatch(f"not the platform's authentication template: {shape[0]}")
    try:
        rendered = render(draft, content.variables)
    except TemplateRenderError as exc:
        raise _mismatch(str(exc)) from exc
    wrong = variable_problems(draft, content.variables)
    if wrong:
        raise VerificationError("bad_variable", "; ".join(wrong))
    text = "\n\n".join(part for part in (rendered.header, rendered.body, rendered.footer) if part)
    label = LABELS[draft.category]
    now = int(time.time() * 1000)
    if draft.category != "marketing":
        if not promotional_terms(text):
            return ShownTemplate(text=text, label=label, rendered=rendered)
        # Variables are sealed, so the registry never saw them: promotion smuggled in through
        # a variable is marketing all the same, and meets the person's choices here.
        hidden = await local_choices.judge(api, store, envelope.sender, draft.category, now)
        if hidden:
            raise VerificationError("hidden_by_choice", hidden)
        label = local_choices.relabel(draft.category)
    local_choices.note_shown(store, envelope.id, now)
    return ShownTemplate(text=text, label=label, rendered=rendered)
