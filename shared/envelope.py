"""The envelope (what the relay sees) and the inner payload (what only the recipient sees)."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from shared.encoding import b64decode
from shared.identifiers import Handle, MessageId, ShortId
from shared.version import (
    MAX_CHAT_TEXT_CHARS,
    MAX_CIPHERTEXT_BYTES,
    MAX_INT64,
    MIN_CIPHERTEXT_BYTES,
    PROTOCOL_VERSION,
)

MessageKind = Literal["chat", "template"]
# "service" is a free-form conversation message; "quick_reply" a person's answer with a
# business's button (a chat that opens no service window); the others are template categories.
Category = Literal["service", "quick_reply", "marketing", "utility", "authentication"]
CHAT_CATEGORIES = ("service", "quick_reply")

# base64 of the largest allowed ciphertext, so oversize input is refused before decoding.
_MAX_CIPHERTEXT_B64 = 4 * ((MAX_CIPHERTEXT_BYTES + 2) // 3)


class CheckedBase64(str):
    """Base64 text that was checked by decoding it, carrying the bytes it decoded to.

    A relay stores the bytes: decoding 1.4 KB of base64 is ~6 µs in CPython, and a campaign
    batch of 1,000 envelopes was decoded twice (here, then for storage).
    """

    raw: bytes


def valid_ciphertext_length(n: int) -> bool:
    """True for the padded sizes a sealed payload may have: powers of two, 256 B to 64 KiB."""
    return MIN_CIPHERTEXT_BYTES <= n <= MAX_CIPHERTEXT_BYTES and n & (n - 1) == 0


class Envelope(BaseModel):
    """Routing metadata plus the sealed payload: everything the relay ever learns of a message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = PROTOCOL_VERSION
    id: MessageId
    sender: Handle
    recipient: Handle
    kind: MessageKind = "chat"
    category: Category = "service"
    template_id: ShortId | None = None
    campaign_id: ShortId | None = None
    not_before: int | None = Field(
        default=None, ge=0, le=MAX_INT64, description="Unix ms; hold until then"
    )
    expires_at: int | None = Field(
        default=None, ge=0, le=MAX_INT64, description="Unix ms; drop after"
    )
    ciphertext: str = Field(max_length=_MAX_CIPHERTEXT_B64, description="base64 sealed box")

    @field_validator("ciphertext")
    @classmethod
    def _padded_ciphertext(cls, value: str) -> str:
        try:
            raw = b64decode(value)
        except ValueError as exc:
            raise ValueError("ciphertext must be standard base64") from exc
        if not valid_ciphertext_length(len(raw)):
            raise ValueError(
                f"ciphertext is {len(raw)} bytes; it must be padded to a power of two "
                f"between {MIN_CIPHERTEXT_BYTES} and {MAX_CIPHERTEXT_BYTES} bytes"
            )
        checked = CheckedBase64(value)
        checked.raw = raw
        return checked

    def ciphertext_bytes(self) -> bytes:
        """The sealed box (decoded once, when the envelope was validated)."""
        raw = getattr(self.ciphertext, "raw", None)  # absent when built by model_construct
        return raw if raw is not None else b64decode(self.ciphertext)


class ChatContent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=MAX_CHAT_TEXT_CHARS)


class TemplateContent(BaseModel):
    """A template message: the approved template's id and hash plus the personal variables."""

    model_config = ConfigDict(extra="forbid")

    template_id: ShortId
    template_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    variables: dict[str, str] = Field(default_factory=dict)
    # Signed by the business, so the relay cannot move one person's copy into a campaign of
    # its own (whose figures it would then read): the device compares it with the envelope's.
    campaign_id: ShortId | None = None


class _PayloadBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = PROTOCOL_VERSION
    id: MessageId
    sender: Handle
    recipient: Handle
    sent_at: int = Field(ge=0, le=MAX_INT64, description="Unix ms, sender's clock")


class ChatPayload(_PayloadBase):
    kind: Literal["chat"] = "chat"
    content: ChatContent


class TemplatePayload(_PayloadBase):
    kind: Literal["template"] = "template"
    content: TemplateContent


InnerPayload = Annotated[ChatPayload | TemplatePayload, Field(discriminator="kind")]
inner_payload_adapter: TypeAdapter[ChatPayload | TemplatePayload] = TypeAdapter(InnerPayload)
