"""Who a Cloud API recipient is here: a handle, or a number the business mapped to one.

The directory of handles is public, so whether a handle exists is no secret; a number is the
business's own, mapped in its profile (``sealpost gateway map``), never sent to the relay.
"""

import re
from dataclasses import dataclass

from client.gateway.config import GatewayConfig, normalise_number
from client.gateway.errors import GraphError, bad_parameter
from client.gateway.shapes import SendMessage
from shared.identifiers import HANDLE_PATTERN


@dataclass(frozen=True)
class Recipient:
    handle: str
    given: str  # as the request wrote it (the Cloud API echoes it as contacts[].input)
    wa_id: str | None  # the mapped number, when the business has one for this handle


def resolve(config: GatewayConfig, message: SendMessage) -> Recipient:
    given = (message.to or message.recipient or "").strip()
    if not given:
        raise GraphError(131008, "Required parameter is missing", "'to' names no recipient")
    digits = normalise_number(given)
    if given.lstrip("+").replace(" ", "").replace("-", "").isdigit():
        handle = config.recipients.get(digits)
        if handle is None:
            raise bad_parameter(
                f"no handle is mapped to {given} in this business's profile; map it with "
                f"`sealpost gateway map --profile PROFILE {digits} HANDLE`, or send to the "
                "handle itself"
            )
        return Recipient(handle, given, digits)
    # pywa, and other libraries, take anything that is not a number for a group id: Sealpost
    # has no groups, so a handle is a person whatever recipient_type says.
    handle = given.lstrip("@").lower()
    if not re.match(HANDLE_PATTERN, handle):
        raise bad_parameter(
            f"'{given}' is neither a mapped phone number nor a Sealpost handle (3 to 32 of "
            "a-z, 0-9, _ . -)"
        )
    return Recipient(handle, given, number_of(config, handle))


def number_of(config: GatewayConfig, handle: str) -> str | None:
    """The number the business mapped to ``handle``, if any (the first, if several)."""
    return next((n for n, h in config.recipients.items() if h == handle), None)


def contact(config: GatewayConfig, handle: str, name: str | None = None) -> dict[str, object]:
    """A person as webhooks' ``contacts[]`` name them: ``user_id`` is the handle (a
    business-scoped id, as the Cloud API's BSUID is), ``wa_id`` the mapped number."""
    entry: dict[str, object] = {"user_id": handle}
    number = number_of(config, handle)
    if number is not None:
        entry["wa_id"] = number
    if name is not None:
        entry["profile"] = {"name": name}
    return entry
