"""What people write to the business, as the Cloud API's ``messages`` webhooks.

The gateway holds the business's delivery stream open (client/messenger.py: each message is
verified, stored in the business's own store, then acked) and posts each verified chat:

- a quick reply (a button of a template the business sent) as ``type: button``, with the
  payload the business chose when it sent that template and its message id as the context;
- an answer that reads as one of the reply buttons the business sent as ``type: interactive``
  (``button_reply``);
- anything else as ``type: text``.

A message that failed verification is never posted: it is not the person's.
"""

from collections.abc import Callable

from client.events import ClientEvent, MessageStored
from client.gateway.config import GatewayConfig
from client.gateway.recipients import contact
from client.gateway.sending import WAMID_PREFIX
from client.gateway.state import GatewayState
from client.gateway.webhooks import Webhooks
from client.store import StoredMessage


class Inbound:
    def __init__(
        self,
        config: GatewayConfig,
        state: GatewayState,
        webhooks: Webhooks,
        name_of: Callable[[str], str | None] = lambda handle: None,
        refresh: Callable[[], None] = lambda: None,
    ) -> None:
        self.config = config
        self.state = state
        self.webhooks = webhooks
        # The sender's display name from the key directory (pinned when the message was
        # verified), which the Cloud API gives as contacts[].profile.name.
        self.name_of = name_of
        # Rereads the number mapping if it changed, so a person is named by the number the
        # business mapped to them meanwhile.
        self.refresh = refresh
        self.online = False

    def on_event(self, event: ClientEvent) -> None:
        if isinstance(event, MessageStored):
            self.received(event.message)
        else:
            self.online = event.online

    def received(self, message: StoredMessage) -> None:
        if message.direction != "in" or message.status != "verified" or message.kind != "chat":
            return
        self.refresh()
        text = message.text or ""
        entry: dict[str, object] = {
            "from": self._from(message.sender),
            "id": WAMID_PREFIX + message.msg_id,
            "timestamp": str(message.sent_at // 1000),
        }
        context = None
        if message.category == "quick_reply":
            found = self.state.answered(message.sender, "template", text)
            payload = found[1]["payload"] if found else text
            context = found[0].wamid if found else None
            entry |= {"type": "button", "button": {"payload": payload, "text": text}}
        else:
            found = self.state.answered(message.sender, "interactive", text)
            if found is not None:
                record, choice = found
                context = record.wamid
                entry |= {
                    "type": "interactive",
                    "interactive": {
                        "type": "button_reply",
                        "button_reply": {"id": choice["id"], "title": choice["title"]},
                    },
                }
            else:
                entry |= {"type": "text", "text": {"body": text}}
        if context is not None:
            entry["context"] = {"from": self.config.display_phone_number, "id": context}
        who = contact(self.config, message.sender, self.name_of(message.sender) or message.sender)
        self.webhooks.post({"contacts": [who], "messages": [entry]})

    def _from(self, handle: str) -> str:
        found = contact(self.config, handle)
        return str(found.get("wa_id") or handle)
