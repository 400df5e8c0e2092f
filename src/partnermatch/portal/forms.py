"""Forms: what a browser posts, read into the API's own schemas, and every broken rule said by its field.

The API rejects a body at its first broken rule; a person filling in a form wants to see all of them at
once. So each field is converted on its own with the type the schema declares for it (the same msgspec
constraints: length, range, pattern, enum), and the struct is built only when every field passed. Rules
that need the database (known sector codes, active cities, password strength) are the services' own:
their ``InvalidInput`` is turned into the same per-field messages (:func:`service_errors`). Nothing is
written before every rule passed, so a rejected form saves nothing and comes back with what was typed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import msgspec
from litestar.datastructures import FormMultiDict

from partnermatch.errors import DomainError
from partnermatch.portal.i18n import N_
from partnermatch.portal.i18n import gettext as _

S = TypeVar("S", bound=msgspec.Struct)

Values = dict[str, Any]
"""What was typed, by field: a string, or a list of strings for fields with several values."""


@dataclass
class Form(Generic[S]):
    values: Values
    errors: dict[str, str] = field(default_factory=dict)
    data: S | None = None

    @property
    def valid(self) -> bool:
        return self.data is not None and not self.errors


def values_of(form: FormMultiDict, lists: Sequence[str] = ()) -> Values:
    """The posted fields as the template shows them again: several values for the ``lists`` fields."""
    values: Values = {}
    for name in form:
        if name == "_csrf_token":
            continue
        values[name] = [str(v) for v in form.getall(name) if str(v)] if name in lists else str(form.get(name))
    for name in lists:
        values.setdefault(name, [])
    return values


def read(
    schema: type[S], values: Values, *, blank_is_none: bool = False, only: Sequence[str] | None = None
) -> Form[S]:
    """``values`` as ``schema``. A blank optional field takes the schema's default; with ``blank_is_none``
    (an update form that shows every field) it clears the field instead: an empty text where the schema
    takes one, else None where it allows that. ``only``: the fields to read."""
    form: Form[S] = Form(values)
    converted: dict[str, Any] = {}
    for info in msgspec.structs.fields(schema):
        if only is not None and info.name not in only:
            continue
        raw = values.get(info.name)
        blank = raw is None or (isinstance(raw, str) and not raw.strip())
        if blank:
            if info.required:
                form.errors[info.name] = _("Please fill this in.")
            elif blank_is_none:
                cleared = _cleared(info.type)
                if cleared is not msgspec.UNSET:
                    converted[info.name] = cleared
            continue
        try:
            converted[info.name] = msgspec.convert(
                raw.strip() if isinstance(raw, str) else raw, info.type, strict=False
            )
        except msgspec.ValidationError as invalid:
            form.errors[info.name] = explain(str(invalid))
    if not form.errors:
        form.data = schema(**converted)
    return form


def _cleared(annotation: Any) -> Any:
    """What an emptied field stores: "" or None, whichever the type takes (UNSET: neither)."""
    for empty in ("", None):
        try:
            return msgspec.convert(empty, annotation)
        except msgspec.ValidationError:
            continue
    return msgspec.UNSET


# msgspec's messages, in the reader's words.
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Expected `str` of length >= (?P<n>\d+)"), N_("Enter at least {n} characters.")),
    (re.compile(r"Expected `str` of length <= (?P<n>\d+)"), N_("Enter at most {n} characters.")),
    (re.compile(r"Expected `array` of length >= (?P<n>\d+)"), N_("Choose at least {n}.")),
    (re.compile(r"Expected `array` of length <= (?P<n>\d+)"), N_("Choose at most {n}.")),
    (re.compile(r"Expected `int` >= (?P<n>-?\d+)"), N_("Enter a number of at least {n}.")),
    (re.compile(r"Expected `int` <= (?P<n>-?\d+)"), N_("Enter a number of at most {n}.")),
    (re.compile(r"Expected `int`"), N_("Enter a whole number.")),
    (re.compile(r"Expected `str` matching regex"), N_("Check the format of this entry.")),
    (re.compile(r"Invalid enum value"), N_("Choose one of the options.")),
)


def explain(message: str) -> str:
    for pattern, template in _RULES:
        found = pattern.search(message)
        if found:
            return _(template).format(**found.groupdict())
    return _("This entry is not valid.")


# The services' rules (English, for the API), in the reader's words; others are shown as they are.
_SERVICE_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"must hold (?P<low>\d+) to (?P<high>\d+) NACE"), N_("Choose {low} to {high} sectors.")),
    (re.compile(r"must not repeat a code"), N_("Choose each sector once.")),
    (re.compile(r"is not a NACE Rev. 2 code"), N_("Choose a sector from the list.")),
    (
        re.compile(r"is a section; give a division"),
        N_("Choose a division, group or class, not a whole section."),
    ),
    (re.compile(r"not ISO 639-1 codes"), N_("Choose languages from the list.")),
    (re.compile(r"must be at least (?P<n>\d+) characters"), N_("Use at least {n} characters.")),
    (re.compile(r"must be at most (?P<n>\d+) characters"), N_("Use at most {n} characters.")),
    (re.compile(r"too common or too easy to guess"), N_("This password is too common or too easy to guess.")),
    (re.compile(r"is unknown, used"), N_("This link is unknown, used or expired: ask for a new one.")),
    (re.compile(r"^is wrong$"), N_("This is not your current password.")),
    (
        re.compile(r"is already a member of this company"),
        N_("This person is already a member of your company."),
    ),
    (re.compile(r"is not a known partner city"), N_("Choose partner cities from the list.")),
    (re.compile(r"partnership with .* is suspended"), N_("This partnership is suspended.")),
)


def service_errors(error: DomainError, fields: Mapping[str, str] | None = None) -> dict[str, str]:
    """A service's field issues by form field (``sectors[2]`` belongs to ``sectors``); ``fields`` renames
    a service's field to the form's. An error without issues becomes the form's own (key ``""``)."""
    errors: dict[str, str] = {}
    for issue in error.issues:
        name = issue.field.split("[", 1)[0].split(".")[-1]
        name = (fields or {}).get(name, name)
        errors.setdefault(name, _service_rule(issue.rule))
    if not errors:
        errors[""] = error.detail
    return errors


def _service_rule(rule: str) -> str:
    for pattern, template in _SERVICE_RULES:
        found = pattern.search(rule)
        if found:
            return _(template).format(**found.groupdict())
    return rule
