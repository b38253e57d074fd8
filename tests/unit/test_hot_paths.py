"""The fast paths of a campaign's journey keep the exact bytes and behaviour of the slow ones
they replaced: a copy's envelope JSON, the stored digest, the privacy ledger's lines, and the
collector being handed its heap back."""

import gc
import json

import pytest

from client.business.audience import AudienceRow
from client.business.sealing import seal_copy
from client.heap import settled_heap
from client.ledger import PrivacyLedger
from server import frames
from server.known_accounts import KnownAccount
from server.mailbox import envelope_digest
from server.routes.accounts import _info, _info_json
from shared.api import AccountInfo, MailboxItem, TemplateInfo
from shared.encoding import b64encode
from shared.envelope import Envelope, TemplatePayload
from shared.identifiers import new_message_id
from shared.keys import AccountKeys
from shared.seal import open_envelope
from shared.templates import TemplateDraft, template_hash

DRAFT = TemplateDraft(
    name="offer",
    category="marketing",
    body="Hi {{name}}, code {{code}}.",
    examples={"name": "Ana", "code": "X1"},
)


def test_a_sealed_copy_is_a_valid_envelope_that_opens_to_its_row() -> None:
    shop, ana = AccountKeys.generate(), AccountKeys.generate()
    template = TemplateInfo(
        id="tpl_0123456789abcdef",
        business="shop",
        hash=template_hash("shop", DRAFT),
        category="marketing",
        requested_category="marketing",
        reclassified_reason=None,
        template=DRAFT,
        created_at=0,
    )
    row = AudienceRow(line=2, handle="ana", variables={"name": 'Ána "A"', "code": "CANARY-7Q"})
    text = seal_copy(shop, "shop", template, row, ana.public.box, "cmp_0123456789abcdef", 7)
    envelope = Envelope.model_validate_json(text)  # what the relay does with it
    assert (envelope.kind, envelope.category) == ("template", "marketing")
    assert (envelope.template_id, envelope.campaign_id) == (template.id, "cmp_0123456789abcdef")
    payload = open_envelope(envelope, ana, shop.public)
    assert isinstance(payload, TemplatePayload)
    assert payload.content.variables == row.variables
    assert payload.sent_at == 7
    assert "Ána" not in text and "CANARY-7Q" not in text  # "-" is not base64


def test_the_stored_digest_never_changes() -> None:
    """Rows keep their digest: a new formula would turn every retry of an older envelope
    into an id conflict. These values come from the original implementation."""
    ciphertext = b64encode(bytes(range(256)))
    chat = Envelope(id="0" * 32, sender="shop", recipient="ana", ciphertext=ciphertext)
    template = Envelope(
        id="0" * 32,
        sender="shop",
        recipient="ana",
        ciphertext=ciphertext,
        kind="template",
        category="marketing",
        template_id="t1",
        campaign_id="cmp_0123456789abcdef",
        not_before=5,
        expires_at=99,
    )
    assert envelope_digest(chat) == (
        "de56df69a5b4c96b61a1f2650bf6ca621a98de005ddffe7fafa9894c1e79518f"
    )
    assert envelope_digest(template) == (
        "8cdb45a62a6952c099bd3b78e8e880387ed7d75e4e6c107f8c4a929e587c6b53"
    )


def test_ledger_lines_are_the_same_whether_or_not_the_body_is_decoded() -> None:
    ledger = PrivacyLedger(None)
    body = json.dumps({"envelopes": [{"id": "x", "text": "é"}]}, ensure_ascii=False).encode()
    ledger.record("POST", "http://relay/v1/messages/batch", {"X-A": "1"}, body, is_json=True)
    ledger.record("POST", "http://relay/v1/messages/batch", {"X-A": "1"}, body)
    spliced, decoded = ledger.entries()
    spliced.pop("at"), decoded.pop("at")
    assert spliced == decoded
    assert spliced["body"] == {"envelopes": [{"id": "x", "text": "é"}]}
    # A body spread over lines would break the one-line-per-request file: it is re-encoded.
    ledger.record("POST", "http://relay/x", {}, b'{\n"a": 1}', is_json=True)
    assert ledger.entries()[-1]["body"] == {"a": 1}
    assert all("\n" not in line for line in ledger._held)


def test_the_heap_is_handed_back_when_the_last_block_ends() -> None:
    assert gc.get_freeze_count() == 0
    with settled_heap():
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with settled_heap():  # a second campaign in the same process
            pass
        assert gc.get_freeze_count() == frozen  # still settled for the first one
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize(
    "display_name", ["Ana", 'Bo "the shop" \\ 5', "Zoë 🛍️", "tab\there", "\u2028line", ""]
)
def test_a_directory_entry_is_served_as_the_model_would_serialise_it(display_name: str) -> None:
    keys = AccountKeys.generate().public
    account = KnownAccount(
        handle="zoe_shop",
        kind="business",
        display_name=display_name,
        country="+39",
        sign_key=keys.sign_b64,
        box_key=keys.box_b64,
        verified=True,
        created_at=1,
    )
    served = _info_json(account)
    assert AccountInfo.model_validate_json(served) == _info(account)
    assert json.loads(served) == json.loads(_info(account).model_dump_json())


@pytest.mark.parametrize("kind", ["chat", "template"])
def test_a_stream_frame_is_the_item_as_the_model_would_serialise_it(kind: str) -> None:
    template = kind == "template"
    envelope = Envelope(
        id=new_message_id(),
        sender="shop.1",
        recipient="ana-b_c",
        kind=kind,  # type: ignore[arg-type]
        category="marketing" if template else "service",
        template_id="tpl_0123456789abcdef" if template else None,
        campaign_id="cmp:0123-4567.89_ab" if template else None,
        not_before=1_700_000_000_123 if template else None,
        expires_at=1_702_592_000_123 if template else None,
        ciphertext=b64encode(bytes(range(256)) * 2),
    )
    row = {
        "msg_id": envelope.id,
        **envelope.model_dump(exclude={"v", "id", "ciphertext"}),
        "ciphertext": envelope.ciphertext_bytes(),
    }
    frame = frames.from_stored(row, 42)
    item = MailboxItem(seq=42, envelope=envelope).model_dump_json().encode()
    assert frame.data == b"id: 42\nevent: envelope\ndata: " + item + b"\n\n"
    assert frame.seq == 42


def test_a_heap_frozen_by_someone_else_stays_frozen() -> None:
    """The audit and the simulator freeze their devices; a campaign must not thaw them."""
    gc.freeze()
    try:
        theirs = gc.get_freeze_count()
        with settled_heap():
            pass
        assert gc.get_freeze_count() == theirs
    finally:
        gc.unfreeze()
