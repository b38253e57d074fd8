"""The token key log's checks (shared/token_log.py): what a device accepts and refuses."""

import pytest
from nacl.signing import SigningKey

from shared.encoding import b64encode
from shared.token_log import (
    GENESIS,
    KeyLog,
    KeyLogBehind,
    KeyLogEntry,
    KeyLogInvalid,
    entry_hash,
    log_key_fingerprint,
    sign_head,
    verify_log,
)
from shared.tokens import IssuerKey

LOG_KEY = SigningKey(bytes(range(32)))


def build(campaigns: list[str], key: SigningKey = LOG_KEY, public=None) -> KeyLog:
    """A well-formed log of one entry per campaign, as the relay serves it."""
    entries, prev = [], GENESIS
    for index, campaign in enumerate(campaigns):
        entry = KeyLogEntry(
            index=index,
            campaign_id=campaign,
            public_key=(public or {}).get(campaign)
            or b64encode(IssuerKey.derive(bytes(32), campaign).public_key),
            valid_from=1_700_000_000_000 + index,
            prev=prev,
        )
        entries.append(entry)
        prev = entry_hash(entry)
    return KeyLog(head=sign_head(key, len(entries), prev), entries=entries)


def reason(log: KeyLog, **kwargs) -> str:
    with pytest.raises(KeyLogInvalid) as err:
        verify_log(log, **kwargs)
    return err.value.reason


def test_a_well_formed_log_lists_each_campaigns_key():
    log = build(["cmp_a", "cmp_b"])
    view = verify_log(log)
    assert view.keys == {e.campaign_id: e.public_key for e in log.entries}
    assert view.head == log.head
    empty = build([])
    assert verify_log(empty).keys == {} and empty.head.hash == GENESIS
    # Signed deterministically: the same log, the same bytes for everyone.
    assert build(["cmp_a", "cmp_b"]).model_dump_json() == log.model_dump_json()


def test_a_log_extends_the_one_seen_before_or_is_refused():
    seen = build(["cmp_a", "cmp_b"]).head
    assert verify_log(build(["cmp_a", "cmp_b", "cmp_c"]), seen=seen).head.size == 3
    assert verify_log(build(["cmp_a", "cmp_b"]), seen=seen).head == seen
    # Rewritten history, however well formed and signed: a fork.
    other = build(["cmp_a", "cmp_b", "cmp_c"], public={"cmp_b": b64encode(bytes(32))})
    assert verify_log(other).head.size == 3
    assert reason(other, seen=seen) == "fork"
    assert reason(build(["cmp_b", "cmp_a", "cmp_c"]), seen=seen) == "fork"
    # Shorter than what was seen: an older copy, to be tried again later, not accepted.
    with pytest.raises(KeyLogBehind):
        verify_log(build(["cmp_a"]), seen=seen)


def test_entries_out_of_place_or_unchained_are_refused():
    log = build(["cmp_a", "cmp_b", "cmp_c"])
    swapped = log.model_copy(deep=True)
    swapped.entries[1].public_key = swapped.entries[2].public_key  # changed, chain not redone
    assert reason(swapped) == "bad_chain"
    dropped = log.model_copy(deep=True)
    del dropped.entries[1]
    assert reason(dropped) == "bad_chain"
    short_head = log.model_copy(deep=True)
    short_head.head = sign_head(LOG_KEY, 2, entry_hash(log.entries[1]))
    assert reason(short_head) == "bad_chain"  # a head that hides the last entry
    assert reason(build(["cmp_a", "cmp_b", "cmp_a"])) == "duplicate_campaign"


def test_the_head_must_be_signed_by_the_log_key_kept_or_pinned():
    log = build(["cmp_a"])
    forged = log.model_copy(deep=True)
    forged.head.signature = b64encode(bytes(64))
    assert reason(forged) == "bad_signature"
    stranger = SigningKey(bytes([7]) * 32)
    other = build(["cmp_a"], key=stranger)
    assert verify_log(other).head.log_key != log.head.log_key  # fine on first sight...
    assert reason(other, seen=log.head) == "log_key_changed"  # ...not after another
    pin = log_key_fingerprint(log.head.log_key)
    assert verify_log(log, pinned_fingerprint=pin.upper()).head == log.head
    assert reason(other, pinned_fingerprint=pin) == "log_key_not_pinned"
