"""What Table Schema type a column of raw text looks like (for drafts and drift reports).

The most specific type every present value fits, tried in this order: boolean (true/false),
integer (digits with a leading zero stay text: postcodes, keys), number (decimal point; or
decimal comma, with "." as thousands separator), date (ISO 8601 or German dd.mm.yyyy), datetime
(ISO 8601 with or without offset, or German dd.mm.yyyy hh:mm[:ss]), else string.
The options returned are the Frictionless field keys
odp.validate.coerce understands (`decimalChar`, `groupChar`, `format`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

_BOOLEAN = r"(?i:true|false)"
_INTEGER = r"[+-]?[0-9]{1,18}"
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NUMBER_COMMA = r"[+-]?[0-9]{1,3}(?:\.?[0-9]{3})*(?:,[0-9]+)?|[+-]?[0-9]+,[0-9]+"
_ISO_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_DE_DATE = r"[0-9]{2}\.[0-9]{2}\.[0-9]{4}"
_ISO_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
_OFFSET = r"(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)"
_DE_TIME = r"[0-9]{2}\.[0-9]{2}\.[0-9]{4} [0-9]{2}:[0-9]{2}(?::[0-9]{2})?"


@dataclass(frozen=True)
class Inferred:
    type: str
    options: dict[str, Any] = field(default_factory=dict)
    naive: bool = False  # datetime without offset: the schema needs "odp:timezone"

    @property
    def label(self) -> str:
        """'number (decimal comma)', 'datetime (naive)' …"""
        notes = []
        if self.options.get("decimalChar") == ",":
            notes.append("decimal comma")
        if "format" in self.options:
            notes.append(f"format {self.options['format']}")
        if self.naive:
            notes.append("no UTC offset")
        return f"{self.type} ({', '.join(notes)})" if notes else self.type


def present(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip()
    return text[text.notna() & (text != "")]


def infer_type(values: pd.Series) -> Inferred:
    text = present(values)
    if text.empty:
        return Inferred("string")

    def every(pattern: str) -> bool:
        return bool(text.str.fullmatch(pattern).all())

    if every(_BOOLEAN):
        return Inferred("boolean")
    if every(_INTEGER):
        if text.str.match(r"[+-]?0[0-9]").any():
            return Inferred("string")  # leading zeros: a code (postcode, key), not a number
        return Inferred("integer")
    if every(_NUMBER):
        return Inferred("number")
    if every(_NUMBER_COMMA):
        grouped = bool(text.str.contains(r"[0-9]\.[0-9]{3}", regex=True).any())
        return Inferred("number", {"decimalChar": ","} | ({"groupChar": "."} if grouped else {}))
    if every(_ISO_DATE):
        return Inferred("date")
    if every(_DE_DATE):
        return Inferred("date", {"format": "%d.%m.%Y"})
    if every(f"{_ISO_TIME}{_OFFSET}"):
        return Inferred("datetime")
    if every(_ISO_TIME):
        return Inferred("datetime", naive=True)
    if every(_DE_TIME):
        seconds = bool(text.str.fullmatch(r".* [0-9]{2}:[0-9]{2}:[0-9]{2}").all())
        fmt = "%d.%m.%Y %H:%M:%S" if seconds else "%d.%m.%Y %H:%M"
        return Inferred("datetime", {"format": fmt}, naive=True)
    return Inferred("string")
