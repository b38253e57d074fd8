"""JSON bodies of the relay's HTTP API, as the client sends and the relay answers them."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.encoding import b64decode
from shared.envelope import Envelope
from shared.identifiers import CountryCode, Handle, MessageId
from shared.version import MAX_BATCH_ENVELOPES

AccountKind = Literal["person", "business"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_key(value: str) -> str:
    try:
        raw = b64decode(value)
    except ValueError as exc:
        raise ValueError("must be standard base64") from exc
    if len(raw) != 32:
        raise ValueError(f"must encode 32 bytes, got {len(raw)}")
    return value


class RegisterAccount(_Strict):
    """``POST /v1/accounts``; signed with the very key it registers (proof of possession)."""

    handle: Handle
    kind: AccountKind = "person"
    display_name: str = Field(min_length=1, max_length=64)
    country: CountryCode | None = Field(
        default=None, description="Calling code such as +39; required for persons (pricing)"
    )
    sign_key: str = Field(description="base64 Ed25519 public key (32 bytes)")
    box_key: str = Field(description="base64 X25519 public key (32 bytes)")

    _keys = field_validator("sign_key", "box_key")(classmethod(lambda cls, v: _check_key(v)))

    @model_validator(mode="after")
    def _persons_have_a_country(self) -> "RegisterAccount":
        if self.kind == "person" and self.country is None:
            raise ValueError("a person account needs a country calling code, e.g. +39")
        return self


class AccountInfo(_Strict):
    """A key-directory entry: public by design (the country is not published)."""

    handle: Handle
    kind: AccountKind
    display_name: str
    verified: bool
    sign_key: str
    box_key: str


class SendResult(_Strict):
    id: MessageId
    status: Literal["accepted", "duplicate", "rejected"]
    error: "ErrorDetail | None" = None


class BatchRequest(_Strict):
    envelopes: list[Envelope] = Field(min_length=1, max_length=MAX_BATCH_ENVELOPES)


class BatchResponse(_Strict):
    accepted: int
    duplicate: int
    rejected: int
    results: list[SendResult]


class MailboxItem(_Strict):
    seq: int
    envelope: Envelope


class MailboxPage(_Strict):
    items: list[MailboxItem]
    next_after: int = Field(description="Pass as ?after= to continue; equals after when empty")


class AckRequest(_Strict):
    ids: list[MessageId] = Field(min_length=1, max_length=MAX_BATCH_ENVELOPES)


class AckResponse(_Strict):
    acked: list[MessageId]
    unknown: list[MessageId] = Field(description="Not pending in this mailbox; nothing changed")


class ErrorDetail(_Strict):
    code: str
    message: str


class ErrorBody(_Strict):
    """Every error answer (4xx, and the rare 5xx): ``{"error": {"code": ..., "message": ...}}``."""

    error: ErrorDetail


class Health(_Strict):
    status: Literal["ok"]
    protocol: int


SendResult.model_rebuild()
