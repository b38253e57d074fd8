"""What one simulation run is: its size, its seed, and the knobs a researcher turns."""

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DAYS_PER_WEEK = 7
MAX_FIGURES_EPSILON = 10.0  # a business's 30-day budget may be at most this (RelaySettings)
DEFAULT_LEVEL_MIX = "all=0.7,chatted=0.1,weekly2=0.1,none=0.1"
_LEVEL = re.compile(r"^(all|chatted|none|weekly(\d{1,3}))$")


class OptionError(ValueError):
    """A knob out of range; the message names it and says what is allowed."""


@dataclass(frozen=True)
class Level:
    """A marketing level as the relay takes it (``PUT /v1/prefs/level``)."""

    level: str  # all | chatted | weekly | none
    weekly_limit: int | None = None

    @property
    def label(self) -> str:
        return f"weekly{self.weekly_limit}" if self.level == "weekly" else self.level

    @classmethod
    def parse(cls, label: str) -> "Level":
        found = _LEVEL.match(label.strip())
        if not found:
            raise OptionError(
                f"unknown marketing level {label!r}: use all, chatted, none or weeklyN "
                "(e.g. weekly2: at most two marketing messages a week)"
            )
        if found.group(2) is not None:
            return cls("weekly", int(found.group(2)))
        return cls(found.group(1))


def parse_levels(text: str) -> dict[str, float]:
    """``"all=0.7,chatted=0.1,weekly2=0.1,none=0.1"`` -> shares that sum to 1, by label."""
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        label, sep, value = part.partition("=")
        if not sep:
            raise OptionError(f"--levels: {part!r} needs a share, e.g. {part}=0.2")
        level = Level.parse(label)
        try:
            share = float(value)
        except ValueError:
            raise OptionError(f"--levels: {value!r} is not a number") from None
        if not (share >= 0 and math.isfinite(share)):
            raise OptionError(f"--levels: the share of {label} must be zero or more")
        weights[level.label] = weights.get(level.label, 0.0) + share
    total = sum(weights.values())
    if total <= 0:
        raise OptionError("--levels: at least one level needs a positive share")
    return {label: share / total for label, share in weights.items()}


def parse_epsilon(text: str) -> float:
    """An epsilon per report: a number, or ``ln3`` / ``ln(3)`` for the protocol's."""
    cleaned = text.strip().lower().replace(" ", "")
    found = re.fullmatch(r"ln\(?([0-9.]+)\)?", cleaned)
    try:
        value = math.log(float(found.group(1))) if found else float(cleaned)
    except ValueError:
        raise OptionError(f"{text!r} is not an epsilon (a number such as 0.5, or ln3)") from None
    if not (value > 0 and math.isfinite(value)):
        raise OptionError(f"epsilon must be positive and finite, got {text!r}")
    return value


K_GONE = (
    "--k is gone: the relay no longer suppresses figures below a threshold k; it publishes "
    "each campaign's figures once, with noise, and the summary sets them against the truth"
)
EPSILON_GONE = (
    "--epsilon is gone: epsilon is the protocol's (ln 3 a report, k-ary randomized response), "
    "the same on every device, so that the relay's estimates hold for everyone's reports; "
    "`sealpost sim sweep --epsilons ...` shows the error at other epsilons"
)


@dataclass
class SimOptions:
    """One run. ``cap`` configures the sim's own relay; with ``relay`` (an existing relay) it
    is that relay's business and must be left unset."""

    persons: int = 200
    businesses: int = 3
    campaigns: int = 8
    days: int = DAYS_PER_WEEK
    seed: int = 1
    # Share of persons with interaction signals switched off: their reports say no_signal.
    signals_off: float = 0.05
    cap: int | None = None  # marketing per person per rolling 24 h; None: the relay's default
    levels: dict[str, float] = field(default_factory=lambda: parse_levels(DEFAULT_LEVEL_MIX))
    relay: str | None = None  # URL of an existing relay; None: run one on loopback
    keep: Path | None = None  # copy the relay database and the profiles here
    workers: int | None = None  # processes playing the persons; None: by the persons' count
    # Businesses whose marketing people do not want (broad audiences, who dismiss, stop and
    # block it); None: one when there are at least two businesses, else none.
    spammy: int | None = None
    # Share of a business's customers who accepted its messages before the run (else it is
    # a stranger to them, and message requests let only its first few copies through). Off
    # by default: at 10,000 persons the extra signed requests at once overflow the relay's
    # open files (20,000 here) while every stream is open.
    accepts: float = 0.0
    quality: bool = True  # the own relay acts on template quality (pauses, disables)
    compare_quality: bool = False  # play the same seed again with quality off, side by side
    # ε of one campaign's published figures on the own relay (None: the relay's default,
    # 0.2); larger makes ratings move with fewer people, at a larger privacy cost.
    figures_epsilon: float | None = None
    figures_after_h: int | None = None  # own relay: figures this long after the send time

    def validate(self) -> "SimOptions":
        """Raise :class:`OptionError` naming the first knob out of range."""
        if self.persons < 10:
            raise OptionError("--persons must be at least 10")
        if not 1 <= self.businesses <= 50:
            raise OptionError("--businesses must be between 1 and 50")
        if not 1 <= self.campaigns <= 200:
            raise OptionError("--campaigns must be between 1 and 200")
        if not 1 <= self.days <= 60:
            raise OptionError("--days must be between 1 and 60")
        if not 0 <= self.signals_off <= 1:
            raise OptionError("--signals-off must be a share between 0 and 1")
        if self.workers is not None and not 0 <= self.workers <= 16:
            raise OptionError("--workers must be between 0 and 16")
        if self.cap is not None and self.cap < 0:
            raise OptionError("--cap must be zero or more")
        if not 0 <= self.accepts <= 1:
            raise OptionError("--accepts must be a share between 0 and 1")
        if not 0 <= self.effective_spammy <= self.businesses:
            raise OptionError("--spammy must be between 0 and --businesses")
        if self.figures_epsilon is not None and not 0 < self.figures_epsilon <= MAX_FIGURES_EPSILON:
            raise OptionError(
                f"--figures-epsilon must be above 0 and at most {MAX_FIGURES_EPSILON:g} (the "
                "most a business's 30-day budget may be)"
            )
        if self.figures_after_h is not None and not 1 <= self.figures_after_h <= 24 * 60:
            raise OptionError("--figures-after-h must be between 1 and 1440 hours")
        own_relay_only = {
            "--no-quality": not self.quality,
            "--compare-quality": self.compare_quality,
            "--figures-epsilon": self.figures_epsilon is not None,
            "--figures-after-h": self.figures_after_h is not None,
        }
        if self.relay is not None and (given := [k for k, v in own_relay_only.items() if v]):
            raise OptionError(
                f"{', '.join(given)} configure(s) the simulator's own relay; an existing relay "
                "(--relay) has its own settings"
            )
        if self.compare_quality and not self.quality:
            raise OptionError("--compare-quality plays with and without quality: drop --no-quality")
        if self.relay is not None and self.cap is not None:
            raise OptionError(
                "--cap configures the simulator's own relay; an existing relay (--relay) has "
                "its own (SEALPOST_RELAY_MARKETING_CAP_24H)"
            )
        return self

    @property
    def effective_spammy(self) -> int:
        if self.spammy is not None:
            return self.spammy
        return 1 if self.businesses >= 2 else 0

    # Imported here: the CLI reads this module to build its parser, before any relay code.
    @property
    def effective_cap(self) -> int:
        from server.settings import RelaySettings

        default: int = RelaySettings.model_fields["marketing_cap_24h"].default
        return default if self.cap is None else self.cap

    @property
    def effective_workers(self) -> int:
        """Worker processes for the persons, unless given: as the audit chooses them (one a
        core, at most two, from 200 persons), and more when one process could not keep that
        many devices' files open."""
        if self.workers is not None:
            return self.workers
        from sealpost.audit.runner import default_workers
        from sealpost.sim.persons import most_devices_per_process

        by_files = math.ceil(self.persons / most_devices_per_process())
        return max(default_workers(self.persons), by_files if by_files > 1 else 0)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["signals_off"] = round(self.signals_off, 4)
        data["levels"] = {label: round(share, 4) for label, share in self.levels.items()}
        data["keep"] = str(self.keep) if self.keep else None
        data["cap"] = None if self.relay else self.effective_cap
        data["workers"] = self.effective_workers
        data["spammy"] = self.effective_spammy
        return data
