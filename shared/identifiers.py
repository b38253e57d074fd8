"""Shapes of the identifiers used across the protocol."""

import secrets
from typing import Annotated

from pydantic import StringConstraints

HANDLE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{2,31}$"
MESSAGE_ID_PATTERN = r"^[0-9a-f]{32}$"
COUNTRY_PATTERN = r"^\+[1-9][0-9]{0,3}$"
CAMPAIGN_ID_PATTERN = r"^cmp_[0-9a-f]{16}$"

Handle = Annotated[str, StringConstraints(pattern=HANDLE_PATTERN)]
MessageId = Annotated[str, StringConstraints(pattern=MESSAGE_ID_PATTERN)]
CountryCode = Annotated[str, StringConstraints(pattern=COUNTRY_PATTERN)]
ShortId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


def new_message_id() -> str:
    """A fresh random message id: 16 random bytes as 32 lowercase hex digits."""
    return secrets.token_hex(16)


def new_campaign_id() -> str:
    """A fresh random campaign id: ``cmp_`` and 8 random bytes as hex."""
    return f"cmp_{secrets.token_hex(8)}"
