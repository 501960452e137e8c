"""Validation: raw text batch → typed rows, findings, quarantine, gate.

    result = validate_batch(df, dataset, run_id, QuarantineStore(state_dir), history=ledger)
    check_gate(result, dataset, state_dir)  # writes reports/NAME.json; raises GateError: the
    publish(result.valid)                   # last good version stays published

Stages: schema drift (odp.validate.drift; `[validate] drift` = fail | evolve), `coerce` (Table
Schema types and constraints), cells longer than `[validate] max_cell_chars` and text cells a
spreadsheet would run as a formula (odp.validate.cells), the primary key (odp.validate.keys: a
row-hash key filled, missing and repeated keys found; `[validate] dedupe` = reject | first |
last), the GX suite
(`expectations/NAME.json`, see odp.validate.suite) on the rows that coerced cleanly and keep
their key, then the time-series rules (`[validate.series]`, see
odp.validate.series) on the rows still valid. Rows with an error finding are rejected and
quarantined; warnings are reported only. The gate (odp.validate.gate) judges the batch as a
whole; odp.validate.report writes the run's JSON report and its Markdown summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from odp.spec import Dataset
from odp.validate import cells
from odp.validate import drift as drift_check
from odp.validate import findings as fnd
from odp.validate import keys as key_check
from odp.validate import series as series_check
from odp.validate.coerce import Coerced, coerce
from odp.validate.drift import Drift
from odp.validate.gate import check_gate, gate_reasons
from odp.validate.quarantine import QuarantineStore
from odp.validate.settings import Settings, settings
from odp.validate.suite import Suite, SuiteOutcome, load_suite, run_suite

__all__ = [
    "Coerced",
    "Drift",
    "QuarantineStore",
    "Settings",
    "Suite",
    "ValidationResult",
    "check_gate",
    "coerce",
    "quarantine_keys",
    "gate_reasons",
    "load_suite",
    "run_suite",
    "settings",
    "validate_batch",
]

MESSAGES_SHOWN = 20


@dataclass
class ValidationResult:
    dataset: str
    valid: pd.DataFrame  # typed rows without error findings (input index kept)
    findings: pd.DataFrame  # row, key, field, rule, severity, value, reason
    rejected_rows: int
    warnings: int
    total: int
    share_rejected: float
    batch_errors: list[str] = field(default_factory=list)
    run_id: str = ""
    started: str = ""  # UTC, ISO 8601
    finished: str = ""
    drift: Drift = field(default_factory=Drift)
    settings: Settings = field(default_factory=Settings)
    present: dict[str, int] = field(default_factory=dict)  # non-missing values per source field
    carried: int = 0  # rows delivered as last published: valid, not validated again (odp.delta)
    type_failed: dict[str, int] = field(default_factory=dict)  # values not of their field's type

    @property
    def drift_blocks(self) -> bool:
        """Drift with `drift = "fail"`: the batch must not be published."""
        return bool(self.drift) and self.settings.drift == "fail"

    def messages(self, limit: int | None = MESSAGES_SHOWN) -> list[str]:
        """One line per finding (errors first); beyond `limit` a closing 'and N more' line."""
        ordered = self.findings.sort_values(
            ["severity", "row"], key=_errors_first, kind="stable", na_position="first"
        )
        shown = ordered if limit is None else ordered.head(limit)
        lines = [_message(self.dataset, f) for f in shown.itertuples(index=False)]
        if len(ordered) > len(shown):
            lines.append(
                f"{self.dataset}: … and {len(ordered) - len(shown)} more findings"
                " (full list in the quarantine)"
            )
        return lines


def _errors_first(column: pd.Series) -> pd.Series:
    return column.map({"error": 0, "warning": 1}) if column.name == "severity" else column


def _message(dataset: str, f: object) -> str:
    where = "batch" if pd.isna(f.row) else f"row {f.row} ({f.key})"  # type: ignore[attr-defined]
    what = f"field '{f.field}': " if f.field else ""  # type: ignore[attr-defined]
    severity = "warning: " if f.severity == "warning" else ""  # type: ignore[attr-defined]
    return f"{dataset}: {where}: {severity}{what}{f.reason}"  # type: ignore[attr-defined]


def validate_batch(
    df: pd.DataFrame,
    dataset: Dataset,
    run_id: str,
    store: QuarantineStore | None = None,
    now: datetime | None = None,
    history: pd.DataFrame | None = None,
) -> ValidationResult:
    """Validate one raw batch; with a `store` the rejected rows are quarantined (the run releases
    keys after publishing their valid rows). `now` fixes the time for `$now` in the suite;
    `history` is the last published table (series rules of incremental datasets continue it).
    A batch whose drift blocks it (`drift = "fail"`) quarantines nothing: it is held back whole."""
    started = _stamp()
    cfg = settings(dataset)
    raw = df.reset_index(drop=True)
    total = len(raw)
    structure = drift_check.columns(raw, dataset.schema)
    if structure and cfg.drift == "fail":
        return ValidationResult(
            dataset.name, raw.iloc[:0], fnd.empty(), 0, 0, total, 0.0, [], run_id, started,
            _stamp(), structure, cfg,
        )
    coerced = coerce(raw, dataset.schema, dataset.name)
    found_drift = Drift(
        structure.new,
        structure.missing,
        drift_check.retyped(raw, dataset.schema, coerced, cfg.retyped_share),
        structure.renamed,
    )
    typed = coerced.frame
    key = list(dataset.schema.primary_key)
    if hashed := dataset.schema.row_hash:
        sources = [f.name for f in dataset.schema.source_fields]
        typed = typed.assign(**{hashed: key_check.row_hash(typed, sources)})
        raw = raw.assign(**{hashed: typed[hashed].to_numpy()})  # the quarantine's key text
    clean = np.ones(total, dtype=bool)
    clean[coerced.rejected] = False
    too_long = cells.long_cells(raw, dataset.schema, cfg.max_cell_chars)
    clean[cells.positions(too_long)] = False
    suite = load_suite(dataset.suite_path, dataset.schema)
    keys = key_check.check_keys(
        typed, key, clean, lambda at: quarantine_keys(raw.iloc[at], key), cfg.dedupe,
        duplicates_reported=key_check.covered_by_suite(suite, key),
    )
    clean[keys.findings["row"].to_numpy(dtype=np.int64) - 1] = False  # rejected or left out
    outcome = _run_suite(typed[clean], dataset, suite, now)
    parts = [coerced.findings, *too_long, keys.findings, *_suite_findings(outcome, raw),
             *cells.formula_cells(raw, dataset.schema)]
    if cfg.series is not None:
        suite_errors = [h.positions for h in outcome.rows if h.severity == "error"]
        if suite_errors:
            clean[np.concatenate(suite_errors)] = False
        past = None if dataset.full_refresh else history
        needed = list(dict.fromkeys(cfg.series.columns))
        parts.extend(series_check.check(typed.loc[clean, needed], cfg.series, past))
    batch_errors = [message for severity, message in outcome.batch if severity == "error"]
    batch_errors += _completeness(cfg, coerced.present, total)
    found = fnd.concat(parts)
    found = _with_keys(found, raw, key)
    found = found.sort_values(["row", "field", "rule"], kind="stable", ignore_index=True)

    errors = found[(found["severity"] == "error") & found["row"].notna()]
    rejected = np.zeros(total, dtype=bool)
    rejected[errors["row"].to_numpy(dtype=np.int64) - 1] = True
    published = ~rejected
    published[keys.left_out] = False  # dedupe: another row of the key is kept
    valid = typed[published]
    valid.index = df.index[published]
    result = ValidationResult(
        dataset=dataset.name,
        valid=valid,
        findings=found,
        rejected_rows=int(rejected.sum()),
        warnings=int((found["severity"] == "warning").sum()),
        total=total,
        share_rejected=float(rejected.sum() / total) if total else 0.0,
        batch_errors=batch_errors,
        run_id=run_id,
        started=started,
        finished=_stamp(),
        drift=found_drift,
        settings=cfg,
        present=dict(coerced.present),
        type_failed=dict(coerced.type_failed),
    )
    if store is not None and not result.drift_blocks:
        store.add(dataset.name, run_id, errors, cells.shortened(raw, cfg.max_cell_chars))
    return result


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _completeness(cfg: Settings, present: dict[str, int], total: int) -> list[str]:
    out = []
    for name, least in cfg.completeness.items():
        share = present.get(name, 0) / total if total else 1.0
        if share < least:
            out.append(f"field '{name}' is {share:.1%} complete (at least {least:.0%} expected)")
    return out


def _run_suite(frame: pd.DataFrame, dataset: Dataset, suite: Suite,
               now: datetime | None) -> SuiteOutcome:
    sources = [f.name for f in dataset.schema.source_fields]
    return run_suite(frame[sources], suite, now)


def _suite_findings(outcome: SuiteOutcome, raw: pd.DataFrame) -> list[pd.DataFrame]:
    parts = []
    for hit in outcome.rows:
        values = _joined(raw.iloc[hit.positions], hit.columns, with_names=len(hit.columns) > 1)
        reasons = fnd.quoted(values) + f" {hit.phrase}"
        if hit.rule == "expect_column_values_to_not_be_null":
            reasons = pd.Series(f"value {hit.phrase}", index=values.index, dtype="string")
        parts.append(
            fnd.frame(hit.positions, ",".join(hit.columns), hit.rule, hit.severity, values, reasons)
        )
    for severity, message in outcome.batch:
        batch = fnd.frame(np.array([0]), "", "table", severity, pd.Series([""]), message)
        batch["row"] = pd.array([pd.NA], dtype="Int64")
        parts.append(batch)
    return parts


def _joined(rows: pd.DataFrame, columns: list[str], with_names: bool) -> pd.Series:
    """`a=1|b=2` (or the bare value of a single column) as text, NA → empty."""
    out: pd.Series | None = None
    for column in columns:
        text = rows[column].astype("string").fillna("")
        part = f"{column}=" + text if with_names else text
        out = part if out is None else out + "|" + part
    return out if out is not None else pd.Series("", index=rows.index, dtype="string")


def quarantine_keys(rows: pd.DataFrame, primary_key: list[str]) -> pd.Series:
    """The quarantine's key of each row, `a=1|b=2` from its text values (the form `open_keys`
    and `release` match on)."""
    return _joined(rows, primary_key, with_names=True)


def _with_keys(found: pd.DataFrame, raw: pd.DataFrame, primary_key: list[str]) -> pd.DataFrame:
    has_row = found["row"].notna().to_numpy()
    if not has_row.any() or not primary_key:
        return found
    positions = found.loc[has_row, "row"].to_numpy(dtype=np.int64) - 1
    keys = quarantine_keys(raw.iloc[positions], primary_key)
    found = found.copy()
    found.loc[has_row, "key"] = keys.to_numpy(dtype=object)
    return found
