"""Column names as a run stages them, and the readable names `odp draft` gives them.

A run loads every source table through dlt, whose naming convention (`snake_case`, the default
of the pipelines in odp.extract) rewrites column names: lower case, `_` between words and
before capitals inside a word, and every character outside a-z, 0-9 replaced — so `Längengrad`
is staged as `l_ngengrad`, `Straße` as `stra_e` and `Ökologie` as `_kologie`. `run_name` is
exactly that rewrite.

`readable_name` is the name a draft proposes: German umlauts transliterated (ä → ae, ö → oe,
ü → ue, ß → ss), other accents dropped (é → e, ² → 2), every other run of characters outside
A-Z, a-z, 0-9 one `_`, a leading digit prefixed (`1. Quartal` → `col_1_quartal`), then the run's
rewrite — so the name is one the run keeps unchanged (`run_name(n) == n`) and the source's
`rename` table maps the raw name to it before dlt sees it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue",
                          "ß": "ss", "ẞ": "SS"})
_OTHER = re.compile(r"[^0-9A-Za-z]+")
DIGIT_PREFIX = "col_"  # a name may not start with a digit (dlt would make it `_1…`)
EMPTY_NAME = "column"


@lru_cache(maxsize=1)
def _naming() -> Any:
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    return NamingConvention()


def run_name(raw: str) -> str:
    """The name a run's staging gives a source column (dlt's snake_case convention)."""
    return str(_naming().normalize_identifier(str(raw)))


def transliterate(text: str) -> str:
    """German umlauts and ß spelled out, other letters reduced to ASCII ('Mélange' → 'Melange')."""
    spelled = unicodedata.normalize("NFC", str(text)).translate(_UMLAUTS)
    return unicodedata.normalize("NFKD", spelled).encode("ascii", "ignore").decode("ascii")


def readable_name(raw: str) -> str:
    """ASCII snake_case that a run keeps as it is: 'Längengrad' → 'laengengrad'."""
    text = _OTHER.sub("_", transliterate(raw)).strip("_") or EMPTY_NAME
    if text[0].isdigit():
        text = DIGIT_PREFIX + text
    name = run_name(text)
    return name if run_name(name) == name else run_name(name)


def readable_names(raws: Iterable[str], taken: Iterable[str] = ()) -> dict[str, str]:
    """Raw name → readable name for each column; names that would coincide (or that are
    `taken`, e.g. columns a later stage adds) get `_2`, `_3` …"""
    used = set(taken)
    out: dict[str, str] = {}
    for raw in raws:
        base = readable_name(raw)
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name)
        out[raw] = name
    return out
