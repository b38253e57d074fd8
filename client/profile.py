"""Profiles on disk: ``<home>/profiles/<name>/`` with profile.json, keys.json (0600), store.db."""

import json
import os
import re
from pathlib import Path

from pydantic import BaseModel

from shared.keys import AccountKeys

PROFILE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class ProfileError(Exception):
    """A profile that is missing, malformed or already there; the message says what to do."""


class ProfileInfo(BaseModel):
    name: str
    handle: str
    relay_url: str
    # Other relays of the same deployment (sharing its database), tried in turn when the
    # one in use cannot be reached.
    other_relays: list[str] = []
    kind: str = "person"
    display_name: str
    country: str | None = None
    # Where anonymous reports go (client/signals.py); SEALPOST_SHUFFLER_URL overrides it.
    shuffler_url: str | None = None


class Profile:
    """One account on one device: its identity, private keys and local files."""

    def __init__(self, home: Path, info: ProfileInfo, keys: AccountKeys) -> None:
        self.home = home
        self.info = info
        self.keys = keys

    @property
    def dir(self) -> Path:
        return profile_dir(self.home, self.info.name)

    @property
    def store_path(self) -> Path:
        return self.dir / "store.db"

    @property
    def ledger_path(self) -> Path:
        return self.dir / "ledger.jsonl"

    @property
    def handle(self) -> str:
        return self.info.handle


def profile_dir(home: Path, name: str) -> Path:
    if not PROFILE_NAME.match(name):
        raise ProfileError(f"'{name}' is not a valid profile name (letters, digits, _ . -).")
    return home / "profiles" / name


def _write_private(path: Path, data: str) -> None:
    # Create with 0600 from the start so the secret is never readable by others, even briefly.
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def create_profile(home: Path, info: ProfileInfo, keys: AccountKeys) -> Profile:
    """Write a new profile; refuses to overwrite one that exists."""
    directory = profile_dir(home, info.name)
    if (directory / "profile.json").exists():
        raise ProfileError(f"Profile '{info.name}' already exists in {directory}.")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_private(directory / "keys.json", json.dumps(keys.to_json()))
    _write_private(directory / "profile.json", info.model_dump_json(indent=2))
    return Profile(home, info, keys)


def load_profile(home: Path, name: str) -> Profile:
    directory = profile_dir(home, name)
    try:
        info = ProfileInfo.model_validate_json((directory / "profile.json").read_text())
        keys = AccountKeys.from_json(json.loads((directory / "keys.json").read_text()))
    except FileNotFoundError as exc:
        raise ProfileError(
            f"No profile '{name}' in {home}. Create it with "
            f"`sealpost account create --profile {name} --handle H --relay URL`."
        ) from exc
    except (ValueError, KeyError) as exc:
        raise ProfileError(f"Profile '{name}' in {directory} is damaged: {exc}") from exc
    return Profile(home, info, keys)


def set_shuffler_url(home: Path, name: str, url: str | None) -> ProfileInfo:
    """Record in the profile where its anonymous reports go."""
    profile = load_profile(home, name)
    info = profile.info.model_copy(update={"shuffler_url": url})
    _write_private(profile.dir / "profile.json", info.model_dump_json(indent=2))
    return info


def set_other_relays(home: Path, name: str, urls: list[str]) -> ProfileInfo:
    """Record the deployment's other relays, tried in turn when the profile's is away."""
    profile = load_profile(home, name)
    cleaned = [u.rstrip("/") for u in urls if u.rstrip("/") != profile.info.relay_url]
    info = profile.info.model_copy(update={"other_relays": list(dict.fromkeys(cleaned))})
    _write_private(profile.dir / "profile.json", info.model_dump_json(indent=2))
    return info


def list_profiles(home: Path) -> list[str]:
    root = home / "profiles"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "profile.json").exists())
