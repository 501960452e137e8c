"""The publish gate: a batch is published only when it passes as a whole.

It runs after the last stage that can reject rows (validation, then georeferencing; the run
hands the later rejections in with `with_rejections`), so every rejected row counts. Held back
(GateError, exit 4; the last good published version stays) when any of:
  * schema drift and the dataset says `drift = "fail"`;
  * the rows left to publish are outside `[validate] min_rows … max_rows`;
  * a table-level expectation with severity error failed, or a field's completeness is below
    `[validate] completeness`;
  * the share of rejected rows reaches `max_quarantine_share`;
  * reasons the run adds from publishing's side (`extra`): a delivery that would empty a
    published table, or a full refresh deleting more than `max_delete_share`
    (see odp.publish.guard).
With a state folder, the run's validation report is written first (odp.validate.report), so the
reason is on record whether the batch passes or not.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from odp.errors import GateError
from odp.spec import Dataset

if TYPE_CHECKING:
    from odp.georeference import Georeferenced
    from odp.validate import ValidationResult


def with_rejections(result: ValidationResult, findings: pd.DataFrame,
                    rejected_index: pd.Index) -> ValidationResult:
    """The result after a later stage rejected more rows: `findings` (rows numbered in the
    validated batch, like the result's own), `rejected_index` their labels in `result.valid`."""
    if findings.empty:
        return result
    rejected = int(result.valid.index.isin(rejected_index).sum())
    valid = result.valid[~result.valid.index.isin(rejected_index)]
    merged = pd.concat([result.findings, findings.astype(result.findings.dtypes.to_dict(),
                                                         errors="ignore")],
                       ignore_index=True)
    merged = merged.sort_values(["row", "field", "rule"], kind="stable", ignore_index=True)
    total_rejected = result.rejected_rows + rejected
    delivered = result.total + result.carried
    return replace(result, valid=valid, findings=merged, rejected_rows=total_rejected,
                   share_rejected=total_rejected / delivered if delivered else 0.0)


def as_delivered(batch: pd.DataFrame, result: ValidationResult, dataset: Dataset
                 ) -> pd.DataFrame:
    """The validated batch as delivered, with a derived key's value (the key the quarantine
    names a row by; the delivered text has none)."""
    if hashed := dataset.schema.row_hash:
        return batch.assign(**{hashed: result.valid[hashed].reindex(batch.index)})
    return batch


def with_located(result: ValidationResult, located: Georeferenced, text: pd.DataFrame,
                 dataset: Dataset) -> tuple[ValidationResult, pd.DataFrame | None]:
    """The result after georeferencing rejected rows of the batch `text` (`as_delivered`), and
    their findings, numbered as rows of the batch (None: it rejected none)."""
    from odp.validate import quarantine_keys

    if located.rejected.empty:
        return result, None
    findings = located.findings(text, quarantine_keys(text, list(dataset.schema.primary_key)))
    return with_rejections(result, findings, located.rejected.index), findings


def _row_band(result: ValidationResult, min_rows: int, max_rows: int | None) -> list[str]:
    # A batch held back whole by drift has no valid rows: judge what was delivered.
    # Rows carried over unchanged (odp.delta) are valid rows of the delivery.
    delivered = result.total + result.carried
    rows = delivered if result.drift_blocks else len(result.valid) + result.carried
    if min_rows <= rows and (max_rows is None or rows <= max_rows):
        return []
    band = f"{min_rows} … {max_rows}" if max_rows is not None else f"at least {min_rows}"
    what = f"{rows} rows" if rows == delivered else (
        f"{rows} rows left to publish of {delivered} delivered")
    return [f"{what}, expected {band}"]


def gate_reasons(result: ValidationResult, dataset: Dataset) -> list[str]:
    """Why the batch must not be published (empty: it may)."""
    from odp.validate.settings import settings

    cfg = settings(dataset)
    reasons = []
    if result.drift and cfg.drift == "fail":
        reasons.append(f"schema drift: {result.drift.describe()} (drift = \"fail\")")
    reasons.extend(_row_band(result, cfg.min_rows, cfg.max_rows))
    reasons.extend(result.batch_errors)
    limit = cfg.max_quarantine_share
    if result.rejected_rows and result.share_rejected >= limit:
        first = result.messages(limit=1)[0].removeprefix(f"{dataset.name}: ")
        reasons.append(
            f"{result.rejected_rows} of {result.total + result.carried} rows rejected "
            f"({result.share_rejected:.1%}, limit {limit:.1%}); first: {first}"
        )
    return reasons


def check_gate(result: ValidationResult, dataset: Dataset, state: Path | None = None,
               extra: list[str] | None = None) -> None:
    """Raise GateError (one line) if the batch must not be published. With `state`, write the
    report `state/reports/NAME.json` (the gate's decision included) before deciding."""
    reasons = gate_reasons(result, dataset) + list(extra or [])
    if state is not None:
        from odp.validate.report import build_report, write_report

        write_report(state, build_report(result, dataset, reasons), validated_now=result.total)
    if reasons:
        raise GateError(f"{dataset.name}: batch held back: {'; '.join(reasons)}")
