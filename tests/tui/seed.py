"""Deterministic store content for snapshots and scale tests (fixed times, fixed ids)."""

from client.store import Contact, Conversation, LocalStore, StoredMessage
from shared.templates import RenderedButton, RenderedTemplate

T0 = 1_767_261_600_000  # 2026-01-01 10:00 UTC
KEY = "A" * 43 + "="  # never used to verify: these messages are already in the store


def contact(store: LocalStore, handle: str, name: str, kind: str = "person") -> None:
    store.save_contact(
        Contact(
            handle=handle,
            kind=kind,
            display_name=name,
            verified=kind == "business",
            sign_key=KEY,
            box_key=KEY,
        )
    )


def incoming(peer: str, me: str, n: int, text: str, **fields: object) -> StoredMessage:
    return StoredMessage(
        msg_id=f"{peer}-{n:06d}",
        peer=peer,
        direction="in",
        sender=peer,
        recipient=me,
        text=text,
        sent_at=T0 + n * 60_000,
        received_at=T0 + n * 60_000,
        status=fields.pop("status", "verified"),  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )


def outgoing(peer: str, me: str, n: int, text: str, status: str = "sent") -> StoredMessage:
    return StoredMessage(
        msg_id=f"{me}-{peer}-{n:06d}",
        peer=peer,
        direction="out",
        sender=me,
        recipient=peer,
        text=text,
        sent_at=T0 + n * 60_000,
        status=status,
    )


def add(store: LocalStore, name: str, kind: str, messages: list[StoredMessage]) -> None:
    peer = messages[0].peer
    with store.session() as s:
        s.merge(
            Conversation(
                peer=peer,
                display_name=name,
                kind=kind,
                verified=kind == "business",
                unread=sum(m.direction == "in" for m in messages[-2:]),
                last_at=max(m.sent_at for m in messages),
                # Writing to someone accepts them; a chat of theirs only is a message request.
                accepted=any(m.direction == "out" for m in messages),
            )
        )
        s.add_all(messages)
        s.commit()


OFFER = RenderedTemplate(
    header=None,
    body="Hi Bob, your code BOB20 takes 20% off until Sunday.",
    footer="ACME Shoes",
    buttons=[
        RenderedButton(type="url", text="Shop now", url="https://acme.example/shop"),
        RenderedButton(type="copy_code", text="Copy code", copy_value="BOB20"),
        RenderedButton(type="quick_reply", text="Stop promotions"),
    ],
)


def seed_demo(store: LocalStore, me: str) -> None:
    """Three chats: a person, a business with a marketing message, and one quarantined."""
    contact(store, "alice", "Alice")
    contact(store, "acme", "ACME Shoes", kind="business")
    contact(store, "mallory", "Mallory")
    add(
        store,
        "Alice",
        "person",
        [
            incoming("alice", me, 1, "hello! are we still on for friday?"),
            outgoing("alice", me, 2, "yes, 8pm at the usual place"),
            incoming("alice", me, 3, "[bold]x[/] [red — markup stays literal"),
            outgoing("alice", me, 4, "see you there", status="queued"),
        ],
    )
    add(
        store,
        "ACME Shoes",
        "business",
        [
            outgoing("acme", me, 5, "do you have these in size 43?"),
            incoming(
                "acme",
                me,
                6,
                OFFER.body + "\n\n" + (OFFER.footer or ""),
                kind="template",
                category="marketing",
                label="Marketing",
                rendered_json=OFFER.model_dump_json(),
                campaign_id="cmp_0123456789abcdef",  # a campaign copy: Interested etc. shown
            ),
        ],
    )
    add(
        store,
        "Mallory",
        "person",
        [
            incoming(
                "mallory",
                me,
                0,
                None,  # type: ignore[arg-type]
                status="quarantined",
                quarantine_reason="bad_signature",
                quarantine_detail="the signature does not match the sender's key",
            )
        ],
    )


def seed_bulk(store: LocalStore, me: str, chats: int, per_chat: int, big: int = 0) -> None:
    """``chats`` conversations of ``per_chat`` messages; the first (newest) has ``big``."""
    with store.session() as s:
        for c in range(chats):
            peer = f"peer{c:03d}"
            count = big if c == 0 and big else per_chat
            s.merge(
                Conversation(
                    peer=peer, display_name=f"Peer {c}", last_at=T0 + count - c, accepted=True
                )
            )
            s.add_all(
                incoming(peer, me, n, f"message {n} in chat {c} " + "lorem ipsum " * (n % 7))
                for n in range(count)
            )
        s.commit()
