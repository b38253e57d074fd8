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


# A phone-number-like id as integrations write one: ASCII digits, with an optional leading +
# and the usual separators. ASCII only: str.isdigit() also takes other scripts' digits, which
# the number's normalised form would drop, leaving a shorter number that may be someone else's.
_NUMBER_AS_WRITTEN = re.compile(r"\+?[0-9][0-9 ().-]*")


def valid_handle(handle: str) -> bool:
    """A Sealpost handle exactly: ASCII, whole (no trailing newline), 3 to 32 characters."""
    return handle.isascii() and re.fullmatch(HANDLE_PATTERN, handle) is not None


def resolve(config: GatewayConfig, message: SendMessage) -> Recipient:
    given = (message.to or message.recipient or "").strip()
    if not given:
        raise GraphError(131008, "Required parameter is missing", "'to' names no recipient")
    if _NUMBER_AS_WRITTEN.fullmatch(given):
        digits = normalise_number(given)
        handle = config.recipients.get(digits)
        if handle is None:
            raise bad_parameter(
                f"no handle is mapped to {given} in this business's profile; map it with "
                f"`sealpost gateway map --profile PROFILE {digits} HANDLE`, or send to the "
                "handle itself"
            )
        if not valid_handle(handle):
            # gateway.json edited by hand: the relay is never asked for a made-up path.
            raise bad_parameter(
                f"{digits} is mapped to '{handle}', which is not a Sealpost handle; map it "
                "again with `sealpost gateway map`"
            )
        return Recipient(handle, given, digits)
    # pywa, and other libraries, take anything that is not a number for a group id: Sealpost
    # has no groups, so a handle is a person whatever recipient_type says. Checked before it
    # is lowered: lower() turns some non-ASCII letters (the Kelvin sign) into ASCII ones.
    handle = given.removeprefix("@")
    if not handle.isascii() or not valid_handle(handle.lower()):
        raise bad_parameter(
            f"'{given}' is neither a mapped phone number (ASCII digits, + allowed) nor a "
            "Sealpost handle (3 to 32 of a-z, 0-9, _ . -)"
        )
    handle = handle.lower()
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
