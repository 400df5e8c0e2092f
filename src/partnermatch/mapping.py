"""Rows read into the API's read schemas, one rule for every controller."""

from typing import TypeVar

import msgspec

S = TypeVar("S", bound=msgspec.Struct)


def read_as(row: object, schema: type[S], **computed: object) -> S:
    """`row` as `schema`: each field from the row's attribute of the same name (msgspec turns a stored
    string into its enum), or from `computed` where the row names it otherwise or it is worked out
    per request. The JSON field names are the schema's own, so they never follow a column's name."""
    if not computed:
        return msgspec.convert(row, schema, from_attributes=True)
    # A misspelt name would otherwise be ignored and the row's attribute of the real name read instead.
    if unknown := computed.keys() - set(schema.__struct_fields__):
        raise TypeError(f"{schema.__name__} has no fields {', '.join(sorted(unknown))}")
    fields = {
        name: computed[name] if name in computed else getattr(row, name) for name in schema.__struct_fields__
    }
    return msgspec.convert(fields, schema, from_attributes=True)
