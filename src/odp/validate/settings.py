"""The `[validate]` table of `pipelines/NAME.toml`, checked and typed.

    [validate]
    max_quarantine_share = 0.05   # gate: hold the batch back when this share of rows is rejected
    drift = "fail"                # "fail": a new, missing or retyped column holds the batch back
                                  # "evolve": reported; new columns are left out, the run goes on
    min_rows = 100                # gate: rows the batch must have (full refresh default 1, else 0)
    max_rows = 1000               # gate: at most this many rows (default: no limit)
    retyped_share = 0.5           # a column is "retyped" when this share of its values (≥ 3)
                                  # fails the schema type, e.g. numbers that became text
    completeness = { water = 0.9 }  # gate: least share of non-missing values per field
    dedupe = "reject"             # rows sharing a primary key (odp.validate.keys): "reject" all
                                  # of them (default: which one is right is unknown), or keep
                                  # the "first" / "last" in delivery order, the others warned
    may_be_empty = false          # gate: a delivery of 0 rows over a non-empty published table
                                  # is held back unless the dataset declares it may be empty
    max_cell_chars = 1000000      # a longer cell is quarantined (rule max_cell_chars)

    [validate.series]             # time-series plausibility (see odp.validate.series)
    by = ["station_uuid"]         # columns naming one series
    time = "timestamp"
    monotonic = "warning"         # a time not after the series' last published one
    [[validate.series.values]]
    column = "water_level"
    max_jump = 50                 # |change| between consecutive values of a series
    flat_count = 96               # the same value this many times in a row
    when = { }                    # optional: only series whose columns have these values
    severity = "warning"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from odp.errors import ConfigError
from odp.spec import Dataset

DRIFT_MODES = ("fail", "evolve")
DEDUPE_MODES = ("reject", "first", "last")
SEVERITIES = ("error", "warning")
_KNOWN = {"max_quarantine_share", "drift", "min_rows", "max_rows", "retyped_share",
          "completeness", "series", "dedupe", "may_be_empty", "max_cell_chars"}
# The longest real cell today is a Wahlbezirk's polygon as WKT (about 80,000 characters); a
# cell of a million characters is no register value or measurement but a broken file (a stray
# quote swallowing the lines after it) or a hostile one, and would also be cut by spreadsheets
# (32,767 characters a cell) and left out of CKAN's full-text index.
MAX_CELL_CHARS = 1_000_000


@dataclass(frozen=True)
class ValueCheck:
    column: str
    max_jump: float | None = None
    flat_count: int | None = None
    when: dict[str, str] = field(default_factory=dict)
    severity: str = "warning"


@dataclass(frozen=True)
class SeriesRules:
    by: tuple[str, ...]
    time: str
    monotonic: str  # "error" | "warning" | "off"
    values: tuple[ValueCheck, ...]

    @property
    def columns(self) -> list[str]:
        return [*self.by, self.time, *(c.column for c in self.values),
                *(k for c in self.values for k in c.when)]


@dataclass(frozen=True)
class Settings:
    max_quarantine_share: float = 0.05
    drift: str = "fail"
    min_rows: int = 0
    max_rows: int | None = None
    retyped_share: float = 0.5
    completeness: dict[str, float] = field(default_factory=dict)
    series: SeriesRules | None = None
    # Rows sharing a primary key: which one is right is unknown, so all are rejected unless the
    # dataset says the source re-delivers rows and the first / last one in delivery order wins.
    dedupe: str = "reject"
    # A delivery of 0 rows over a non-empty published table is held back unless the dataset
    # declares it may be empty (an empty source is more often a broken one).
    may_be_empty: bool = False
    max_cell_chars: int = MAX_CELL_CHARS


def settings(dataset: Dataset) -> Settings:
    """Read and check the dataset's `[validate]` table (ConfigError names file and key)."""
    raw = dict(dataset.validate)
    where = f"{dataset.definition_path}: [validate]"
    unknown = sorted(set(raw) - _KNOWN)
    if unknown:
        known = ', '.join(sorted(_KNOWN))
        raise ConfigError(f"{where}: unknown key '{unknown[0]}' (known: {known})")
    share = _share(raw.get("max_quarantine_share", 0.05), f"{where} max_quarantine_share")
    drift = raw.get("drift", "fail")
    if drift not in DRIFT_MODES:
        raise ConfigError(f"{where}: drift must be 'fail' or 'evolve', got {drift!r}")
    min_rows = _count(raw.get("min_rows", 1 if dataset.full_refresh else 0), f"{where} min_rows")
    max_rows = raw.get("max_rows")
    if max_rows is not None:
        max_rows = _count(max_rows, f"{where} max_rows")
        if max_rows < min_rows:
            raise ConfigError(f"{where}: max_rows {max_rows} is below min_rows {min_rows}")
    sources = {f.name for f in dataset.schema.source_fields}
    completeness = raw.get("completeness", {})
    if not isinstance(completeness, dict):
        raise ConfigError(f"{where}: completeness must be a table of field = share")
    for name, value in completeness.items():
        _field(name, sources, f"{where} completeness")
        _share(value, f"{where} completeness.{name}")
    series = _series(raw.get("series"), sources, where) if "series" in raw else None
    dedupe = raw.get("dedupe", "reject")
    if dedupe not in DEDUPE_MODES:
        raise ConfigError(f"{where} dedupe: must be 'reject', 'first' or 'last', got {dedupe!r}")
    may_be_empty = raw.get("may_be_empty", False)
    if not isinstance(may_be_empty, bool):
        raise ConfigError(f"{where} may_be_empty: must be true or false, got {may_be_empty!r}")
    return Settings(
        max_quarantine_share=share,
        drift=drift,
        min_rows=min_rows,
        max_rows=max_rows,
        retyped_share=_share(raw.get("retyped_share", 0.5), f"{where} retyped_share"),
        completeness={k: float(v) for k, v in completeness.items()},
        series=series,
        dedupe=dedupe,
        may_be_empty=may_be_empty,
        max_cell_chars=_positive(raw.get("max_cell_chars", MAX_CELL_CHARS),
                                 f"{where} max_cell_chars"),
    )


def _series(raw: Any, sources: set[str], where: str) -> SeriesRules:
    where = f"{where}.series"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    by = raw.get("by", [])
    by = [by] if isinstance(by, str) else list(by)
    for name in by:
        _field(name, sources, f"{where} by")
    time = raw.get("time")
    if not isinstance(time, str):
        raise ConfigError(f"{where}: needs time = \"COLUMN\" (the measurement time)")
    _field(time, sources, f"{where} time")
    monotonic = raw.get("monotonic", "warning")
    if monotonic not in (*SEVERITIES, "off"):
        raise ConfigError(f"{where}: monotonic must be 'error', 'warning' or 'off'")
    checks = []
    for i, item in enumerate(raw.get("values", []), start=1):
        at = f"{where}.values {i}"
        if not isinstance(item, dict) or not isinstance(item.get("column"), str):
            raise ConfigError(f"{at}: needs column = \"COLUMN\"")
        _field(item["column"], sources, at)
        when = {str(k): str(v) for k, v in dict(item.get("when", {})).items()}
        for name in when:
            _field(name, sources, f"{at} when")
        severity = item.get("severity", "warning")
        if severity not in SEVERITIES:
            raise ConfigError(f"{at}: severity must be 'error' or 'warning'")
        jump = item.get("max_jump")
        if jump is not None and (not isinstance(jump, int | float) or jump < 0):
            raise ConfigError(f"{at}: max_jump must be a number ≥ 0")
        flat = item.get("flat_count")
        if flat is not None and (not isinstance(flat, int) or flat < 2):
            raise ConfigError(f"{at}: flat_count must be a whole number ≥ 2")
        checks.append(ValueCheck(item["column"], jump, flat, when, severity))
    return SeriesRules(tuple(by), time, monotonic, tuple(checks))


def _field(name: Any, sources: set[str], where: str) -> None:
    if name not in sources:
        raise ConfigError(f"{where}: '{name}' is not a source field of the schema")


def _share(value: Any, where: str) -> float:
    if not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(f"{where}: must be a share between 0 and 1, got {value!r}")
    return float(value)


def _count(value: Any, where: str) -> int:
    if not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: must be a whole number ≥ 0, got {value!r}")
    return value


def _positive(value: Any, where: str) -> int:
    if _count(value, where) < 1:
        raise ConfigError(f"{where}: must be a whole number ≥ 1, got {value!r}")
    return int(value)
