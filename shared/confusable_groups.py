"""Unicode TR39's confusables as groups of characters that look alike.

The maintained ``confusable-homoglyphs`` package ships UTS #39's confusables.txt as a
symmetric map (a source lists its prototype, a prototype its sources): the prototypes are
lost, but the groups are not. Each connected group is one prototype with its look-alikes.
Both the promotional check (shared/promotional.py) and the client's look-alike names
(client/lookalikes.py) pick their own stand-in per group from these.
"""

from functools import cache

from confusable_homoglyphs.utils import load

_BIDI_MARKS = "\u200e\u200f"  # the data file's own left-to-right marks around Arabic forms


@cache
def confusable_groups() -> tuple[frozenset[str], ...]:
    """Every group of mutually confusable strings (single characters, and a few sequences
    such as "rn"), built once from the package's data."""
    data: dict[str, list[dict[str, str]]] = load("confusables.json")
    neighbours: dict[str, set[str]] = {}
    for key, entries in data.items():
        source = key.strip(_BIDI_MARKS)
        for entry in entries:
            other = entry["c"].strip(_BIDI_MARKS)
            if source and other and other != source:
                neighbours.setdefault(source, set()).add(other)
                neighbours.setdefault(other, set()).add(source)
    groups: list[frozenset[str]] = []
    seen: set[str] = set()
    for start in neighbours:
        if start in seen:
            continue
        group, frontier = {start}, [start]
        while frontier:
            for other in neighbours[frontier.pop()]:
                if other not in group:
                    group.add(other)
                    frontier.append(other)
        seen |= group
        groups.append(frozenset(group))
    return tuple(groups)
