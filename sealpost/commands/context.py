"""Shared plumbing for client commands: resolve --home, open a profile, map errors to exits."""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from client.messenger import Messenger
from client.profile import ProfileError
from client.relay_api import RelayError, RelayUnavailable
from client.settings import ClientSettings
from sealpost.commands.output import (
    EXIT_BAD_INPUT,
    EXIT_UNREACHABLE,
    describe_invalid,
    fail,
)
from shared.seal import PayloadTooLarge


def home_of(args: Any) -> Path:
    return Path(args.home) if getattr(args, "home", None) else ClientSettings().home


def run_client(args: Any, body: Callable[[Messenger], Awaitable[int]]) -> int:
    """Open ``--profile``, run ``body`` with it, and turn known failures into clear messages."""

    async def go() -> int:
        async with Messenger.open(home_of(args), args.profile) as messenger:
            return await body(messenger)

    return guarded(go)


def guarded(make: Callable[[], Awaitable[int]]) -> int:
    try:
        return asyncio.run(make())  # type: ignore[arg-type]
    except ProfileError as exc:
        return fail(str(exc), error="no_profile")
    except RelayUnavailable as exc:
        return fail(
            f"{exc}. Is the relay running? Check the URL in the profile; what you asked is "
            "kept where it can be (an unsent message waits in the outbox).",
            EXIT_UNREACHABLE,
        )
    except RelayError as exc:
        return fail(exc.message + f" [{exc.code}]", error=exc.code)
    except PayloadTooLarge as exc:
        return fail(f"message too long to seal ({exc}); split it into several messages.")
    except ValidationError as exc:
        return fail(describe_invalid(exc), EXIT_BAD_INPUT)
