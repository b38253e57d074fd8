"""Sending through the gateway: templates as campaign copies, text and reply buttons as chats.

Every copy is personalised and sealed here, with the business's keys, as the console seals a
campaign (client/business/sealing.py). The Cloud API sends one message at a time; Sealpost
sends campaigns, whose figures are what the business learns about people. So the gateway
groups a day's sends of one template into a campaign (a new one when a person already has a
copy of it, as a campaign reaches a person once, or when it is full or out of money): the
figures then describe that day's sends, with the noise that protects each person in them.

The answer to a send is the same for every recipient the relay accepts: whether the person
stopped promotions, blocked the business or set a marketing level is applied by the relay at
release and never told back, here or in any webhook.
"""

import asyncio
import json
import time
from datetime import UTC, datetime

from nacl.public import PublicKey

from client.business.audience import AudienceRow
from client.business.sealing import seal_copy
from client.gateway.config import GatewayConfig
from client.gateway.errors import (
    PAYMENT_ISSUE,
    UNDELIVERABLE,
    UNSUPPORTED_TYPE,
    GraphError,
    bad_parameter,
    from_relay,
)
from client.gateway.recipients import Recipient
from client.gateway.shapes import Interactive, SendAnswer, SentContact, SentId, TemplateMessage
from client.gateway.state import GatewayState
from client.gateway.templates import fill
from client.gateway.webhooks import Webhooks
from client.messenger import Messenger
from client.relay_api import RelayError
from client.store import Contact
from shared.api import CampaignCreate, TemplateInfo
from shared.encoding import b64decode
from shared.envelope import ChatContent, ChatPayload
from shared.identifiers import new_campaign_id, new_message_id
from shared.seal import PayloadTooLarge, seal_envelope
from shared.templates import priced_category

WAMID_PREFIX = "wamid."  # Cloud API message ids start so; the rest is Sealpost's message id
# Relay refusals after which the copy goes again in a new campaign of the day.
_NEW_CAMPAIGN = {"budget_exhausted", "duplicate_recipient", "campaign_stopped"}


def wamid(message_id: str) -> str:
    return WAMID_PREFIX + message_id


def now_ms() -> int:
    return int(time.time() * 1000)


class Outbound:
    def __init__(
        self,
        messenger: Messenger,
        config: GatewayConfig,
        state: GatewayState,
        webhooks: Webhooks,
    ) -> None:
        self.messenger = messenger
        self.api = messenger.api
        self.business = messenger.profile.handle
        self.config = config
        self.state = state
        self.webhooks = webhooks
        # One template send at a time: choosing (or opening) today's campaign and recording
        # who has a copy must not interleave, or two sends could open two campaigns.
        self._campaigns = asyncio.Lock()

    def _answer(self, recipient: Recipient, message_id: str, accepted: bool) -> SendAnswer:
        return SendAnswer(
            contacts=[
                SentContact(input=recipient.given, wa_id=recipient.wa_id, user_id=recipient.handle)
            ],
            messages=[
                SentId(id=wamid(message_id), message_status="accepted" if accepted else None)
            ],
        )

    async def _person(self, recipient: Recipient) -> Contact:
        try:
            contact = await self.messenger.contact(recipient.handle)
        except RelayError as exc:
            if exc.code == "unknown_handle":
                raise bad_parameter(f"no Sealpost account '{recipient.handle}'") from exc
            raise from_relay(exc) from exc
        if contact.kind != "person":
            raise bad_parameter(f"{recipient.handle} is a business; messages go to persons")
        if contact.key_changed:
            # The person's keys changed and this business has not accepted the new ones:
            # nothing is sealed to keys nobody compared (the same rule as the console's).
            raise GraphError(
                UNDELIVERABLE,
                "Message undeliverable",
                f"{recipient.handle}'s safety number changed; compare it and accept the new key "
                "in the business's app before sending",
            )
        return contact

    def _sent(
        self, recipient: Recipient, message_id: str, category: str, tracker: str | None
    ) -> None:
        """The one status the gateway posts: ``sent``, when the relay took the message."""
        status: dict[str, object] = {
            "id": wamid(message_id),
            "status": "sent",
            "timestamp": str(now_ms() // 1000),
            "recipient_id": recipient.wa_id or recipient.handle,
            "recipient_user_id": recipient.handle,
            "pricing": {
                # Every copy is charged when sent, whatever the person's choices; refused and
                # undelivered copies come back as one rebate per campaign, from noisy figures.
                "billable": category != "service",
                "pricing_model": "PMP",
                "category": category,
                "type": "regular" if category != "service" else "free_customer_service",
            },
        }
        if tracker is not None:
            status["biz_opaque_callback_data"] = tracker
        contact: dict[str, object] = {"user_id": recipient.handle}
        if recipient.wa_id:
            contact["wa_id"] = recipient.wa_id
        self.webhooks.post({"contacts": [contact], "statuses": [status]})

    # --- templates ---------------------------------------------------------------------------

    async def template(
        self,
        recipient: Recipient,
        message: TemplateMessage,
        template: TemplateInfo,
        tracker: str | None,
    ) -> SendAnswer:
        filled = fill(template.template, message.components)
        contact = await self._person(recipient)
        box_key = PublicKey(b64decode(contact.box_key))
        row = AudienceRow(line=0, handle=recipient.handle, variables=filled.variables)
        choices = [
            {"text": b.text, "payload": filled.payloads.get(i, b.text)}
            for i, b in enumerate(template.template.buttons)
            if b.type == "quick_reply"
        ]
        async with self._campaigns:
            for _ in range(3):  # a full, spent or already-reached campaign: the next one
                campaign_id = await self._campaign(template, recipient.handle)
                envelope = seal_copy(
                    self.messenger.profile.keys,
                    self.business,
                    template,
                    row,
                    box_key,
                    campaign_id,
                    now_ms(),
                )
                message_id = json.loads(envelope)["id"]
                try:
                    answer = await self.api.send_batch_json([envelope])
                except RelayError as exc:
                    raise from_relay(exc) from exc
                [result] = answer.results
                if result.error is None:
                    self.state.record_sent(
                        wamid(message_id),
                        recipient.handle,
                        "template",
                        choices,
                        template_id=template.id,
                        campaign_id=campaign_id,
                    )
                    break
                if result.error.code not in _NEW_CAMPAIGN:
                    raise from_relay(RelayError(400, result.error.code, result.error.message))
                if result.error.code == "duplicate_recipient":
                    self.state.mark_copy(campaign_id, recipient.handle)
                else:
                    self.state.close_campaign(campaign_id)
            else:
                raise GraphError(
                    PAYMENT_ISSUE,
                    "Business eligibility payment issue",
                    "no campaign of today could take this copy; top up the budget",
                )
        self._sent(
            recipient, message_id, priced_category(template.category, template.template), tracker
        )
        return self._answer(recipient, message_id, accepted=True)

    async def _campaign(self, template: TemplateInfo, handle: str) -> str:
        """Today's campaign of ``template`` that may still take a copy for ``handle``."""
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        found = self.state.open_campaign(template.id, day, handle)
        if found is not None:
            return found
        try:
            available = (await self.api.budget()).available
        except RelayError as exc:
            raise from_relay(exc) from exc
        budget = min(available, self.config.campaign_budget or available)
        if budget <= 0:
            raise GraphError(
                PAYMENT_ISSUE,
                "Business eligibility payment issue",
                "the business's balance is spent; top it up (`sealpost business budget top-up`)",
            )
        create = CampaignCreate(
            id=new_campaign_id(),
            template_id=template.id,
            name=f"gateway {template.template.name} {day}",
            budget=budget,
            audience_size=self.config.campaign_size,
            # Filled as the business's integration sends, all day: never "interrupted".
            open_ended=True,
        )
        try:
            report = await self.api.create_campaign(create)
        except RelayError as exc:
            raise from_relay(exc) from exc
        self.state.add_campaign(report.id, template.id, day, self.config.campaign_size)
        return report.id

    # --- chats -------------------------------------------------------------------------------

    async def _chat(self, recipient: Recipient, text: str) -> str:
        contact = await self._person(recipient)
        payload = ChatPayload(
            id=new_message_id(),
            sender=self.business,
            recipient=recipient.handle,
            sent_at=now_ms(),
            content=ChatContent(text=text),
        )
        keys = self.messenger.profile.keys
        try:
            envelope = seal_envelope(payload, keys, PublicKey(b64decode(contact.box_key)))
            await self.api.send(envelope)
        except PayloadTooLarge as exc:
            raise bad_parameter(f"the text is too long to seal: {exc}") from exc
        except RelayError as exc:
            raise from_relay(exc) from exc
        return payload.id

    async def text(self, recipient: Recipient, body: str, tracker: str | None) -> SendAnswer:
        message_id = await self._chat(recipient, body)
        self.state.record_sent(wamid(message_id), recipient.handle, "text", [])
        self._sent(recipient, message_id, "service", tracker)
        return self._answer(recipient, message_id, accepted=False)

    async def interactive(
        self, recipient: Recipient, interactive: Interactive, tracker: str | None
    ) -> SendAnswer:
        """Reply buttons, as text: a chat carries text only, so the choices are listed under
        the body, and an answer that reads as one of them comes back as its button_reply."""
        if interactive.type != "button" or not interactive.action.buttons:
            raise GraphError(
                UNSUPPORTED_TYPE,
                "Message type unknown",
                f"interactive type {interactive.type}: the gateway sends reply buttons "
                "(type button) only",
            )
        choices = [{"id": b.reply.id, "title": b.reply.title} for b in interactive.action.buttons]
        lines = []
        if interactive.header is not None and interactive.header.text:
            lines += [interactive.header.text, ""]
        lines.append(interactive.body.text)
        if interactive.footer is not None:
            lines += ["", interactive.footer.text]
        lines.append("")
        lines += [f"{n}. {c['title']}" for n, c in enumerate(choices, start=1)]
        lines.append("(reply with a number or the words)")
        message_id = await self._chat(recipient, "\n".join(lines))
        self.state.record_sent(wamid(message_id), recipient.handle, "interactive", choices)
        self._sent(recipient, message_id, "service", tracker)
        return self._answer(recipient, message_id, accepted=False)
