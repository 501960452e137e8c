"""What Table Schema type a column of raw text looks like (for drafts and drift reports).

The most specific type every present value fits, tried in this order: boolean (true/false),
integer (digits with a leading zero stay text: postcodes, keys), number (decimal point; or
decimal comma, with "." as thousands separator), date (ISO 8601, or day first: dd.mm.yyyy,
dd.mm.yy, dd-mm-yyyy, dd-mm-yy, dd/mm/yyyy, dd/mm/yy — every value must be a real calendar day),
datetime (ISO 8601 with or without offset, or one of those dates with hh:mm or hh:mm:ss), else
string. Two-digit years are read as strptime's %y does: 69–99 → 1969–1999, 00–68 → 2000–2068.
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
_ISO_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
_OFFSET = r"(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)"
_DAY = r"(?:0?[1-9]|[12][0-9]|3[01])"
_MONTH = r"(?:0?[1-9]|1[0-2])"
_HM, _HMS = r"[0-9]{1,2}:[0-9]{2}", r"[0-9]{1,2}:[0-9]{2}:[0-9]{2}"


def _day_first() -> list[tuple[str, str, str]]:
    """(pattern, type, strptime format) of day-first dates: dd.mm.yyyy, dd.mm.yy, dd-mm-yyyy,
    dd-mm-yy, dd/mm/yyyy, dd/mm/yy, each alone or with hh:mm or hh:mm:ss (seconds first)."""
    out = []
    for sep in (".", "-", "/"):
        for year, code in (("[0-9]{4}", "%Y"), ("[0-9]{2}", "%y")):
            date = f"{_DAY}\\{sep}{_MONTH}\\{sep}{year}"
            fmt = f"%d{sep}%m{sep}{code}"
            out += [(date, "date", fmt), (f"{date} {_HMS}", "datetime", f"{fmt} %H:%M:%S"),
                    (f"{date} {_HM}", "datetime", f"{fmt} %H:%M")]
    return out


_DAY_FIRST = _day_first()


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


def _parses(text: pd.Series, fmt: str) -> bool:
    return bool(pd.to_datetime(text, format=fmt, errors="coerce").notna().all())


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
    if every(f"{_ISO_TIME}{_OFFSET}"):
        return Inferred("datetime")
    if every(_ISO_TIME):
        return Inferred("datetime", naive=True)
    for pattern, kind, fmt in _DAY_FIRST:
        if every(pattern) and _parses(text, fmt):
            return Inferred(kind, {"format": fmt}, naive=kind == "datetime")
    return Inferred("string")
