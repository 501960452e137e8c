"""Schema drift: the batch's source columns against the Table Schema, reported by name.

  * new      — a column the schema does not know, with values (dlt's `_dlt_…` columns and the
               derived source's `_deleted` are bookkeeping; any other name, also one starting
               with `_` — dlt stages `Ökologie` as `_kologie` — is the source's; staging keeps a
               column a past delivery had, empty ever after);
  * missing  — a source field of the schema the batch does not have, or a required one whose
               values are all missing in a batch of at least 10 rows (staging keeps a column the
               source stopped sending, with empty values);
  * retyped  — at least `retyped_share` of a column's values (and at least 3) fail the schema's
               type, e.g. a number column that arrives as text or with a decimal comma.

A schema field whose raw name the run renames (odp.validate.names: `Längengrad` is staged as
`l_ngengrad`) is reported as arriving under that name, with the `rename` entry that fixes it.

The dataset's `[validate] drift` decides: "fail" holds the batch back (the gate says why);
"evolve" reports the drift and goes on — new columns stay out of the published table, missing
ones count as empty values, retyped values are rejected row by row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd

from odp.spec import TableSchema
from odp.validate.coerce import Coerced
from odp.validate.infer import infer_type
from odp.validate.names import readable_name, run_name

MIN_RETYPED_VALUES = 3
MIN_ROWS_EMPTY_IS_MISSING = 10
BOOKKEEPING_PREFIX = "_dlt_"  # dlt's own columns (_dlt_id, _dlt_load_id, …)
BOOKKEEPING = frozenset({"_deleted"})  # odp.sources.derived.DELETED (hard-delete marker)


@dataclass(frozen=True)
class Retyped:
    column: str
    expected: str
    observed: str
    failed: int
    present: int


@dataclass(frozen=True)
class Drift:
    new: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    retyped: list[Retyped] = field(default_factory=list)
    # (schema field, the name the run staged it under): a raw name dlt rewrote
    renamed: list[tuple[str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.new or self.missing or self.retyped)

    def describe(self) -> str:
        """"missing column 'postcode'; new column 'plz'; column 'x' retyped: …" """
        parts = []
        explained = {name for pair in self.renamed for name in pair}
        if missing := [c for c in self.missing if c not in explained]:
            parts.append(_plural("missing column", missing))
        if new := [c for c in self.new if c not in explained]:
            parts.append(_plural("new column", new))
        for wanted, staged in self.renamed:
            parts.append(
                f"column '{wanted}' arrives as '{staged}' (the run's column naming): map it in "
                f"[source] rename, e.g. \"{wanted}\" = \"{readable_name(wanted)}\", and name the "
                "schema field so"
            )
        for r in self.retyped:
            parts.append(
                f"column '{r.column}' retyped: schema {r.expected}, batch {r.observed} "
                f"({r.failed} of {r.present} values fail)"
            )
        return "; ".join(parts)

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        if not self.renamed:
            del out["renamed"]  # the report names renamed columns only when there are some
        return out


def columns(df: pd.DataFrame, schema: TableSchema) -> Drift:
    """New and missing columns (structure only)."""
    present = [str(c) for c in df.columns if not bookkeeping(str(c))]
    expected = [f.name for f in schema.source_fields]
    required = {f.name for f in schema.source_fields if f.required}
    missing = [c for c in expected if c not in present or (c in required and _empty(df, c))]
    new = [c for c in present if c not in expected and not _empty(df, c, at_least=0)]
    renamed = [(c, run_name(c)) for c in missing if run_name(c) != c and run_name(c) in new]
    return Drift(new=new, missing=missing, renamed=renamed)


def bookkeeping(column: str) -> bool:
    """A column the pipeline adds (dlt's, the derived source's), never a source column."""
    return column.startswith(BOOKKEEPING_PREFIX) or column in BOOKKEEPING


def _empty(df: pd.DataFrame, column: str, at_least: int = MIN_ROWS_EMPTY_IS_MISSING) -> bool:
    if len(df) < at_least:
        return False
    values = df[column]
    return not bool((values.notna() & (values.astype("string") != "")).any())


def retyped(df: pd.DataFrame, schema: TableSchema, coerced: Coerced, share: float) -> list[Retyped]:
    out = []
    for f in schema.source_fields:
        failed, present = coerced.type_failed.get(f.name, 0), coerced.present.get(f.name, 0)
        if f.type == "string" or failed < MIN_RETYPED_VALUES or failed < share * present:
            continue
        observed = infer_type(df[f.name]).label
        out.append(Retyped(f.name, f.type, observed, failed, present))
    return out


def _plural(label: str, names: list[str]) -> str:
    quoted = ", ".join(f"'{n}'" for n in names)
    return f"{label}{'s' if len(names) > 1 else ''} {quoted}"
