"""The publish gate: a batch is published only when it passes as a whole.

Held back (GateError, exit 4; the last good published version stays) when any of:
  * schema drift and the dataset says `drift = "fail"`;
  * the batch's row count is outside `[validate] min_rows … max_rows`;
  * a table-level expectation with severity error failed, or a field's completeness is below
    `[validate] completeness`;
  * the share of rejected rows reaches `max_quarantine_share`.
With a state folder, the run's validation report is written first (odp.validate.report), so the
reason is on record whether the batch passes or not.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from odp.errors import GateError
from odp.spec import Dataset

if TYPE_CHECKING:
    from odp.validate import ValidationResult


def gate_reasons(result: ValidationResult, dataset: Dataset) -> list[str]:
    """Why the batch must not be published (empty: it may)."""
    from odp.validate.settings import settings

    cfg = settings(dataset)
    reasons = []
    if result.drift and cfg.drift == "fail":
        reasons.append(f"schema drift: {result.drift.describe()} (drift = \"fail\")")
    if result.total < cfg.min_rows or (cfg.max_rows is not None and result.total > cfg.max_rows):
        band = f"{cfg.min_rows} … {cfg.max_rows}" if cfg.max_rows is not None else (
            f"at least {cfg.min_rows}")
        reasons.append(f"{result.total} rows, expected {band}")
    reasons.extend(result.batch_errors)
    limit = cfg.max_quarantine_share
    if result.rejected_rows and result.share_rejected >= limit:
        first = result.messages(limit=1)[0].removeprefix(f"{dataset.name}: ")
        reasons.append(
            f"{result.rejected_rows} of {result.total} rows rejected "
            f"({result.share_rejected:.1%}, limit {limit:.1%}); first: {first}"
        )
    return reasons


def check_gate(result: ValidationResult, dataset: Dataset, state: Path | None = None) -> None:
    """Raise GateError (one line) if the batch must not be published. With `state`, write the
    report `state/reports/NAME.json` (the gate's decision included) before deciding."""
    reasons = gate_reasons(result, dataset)
    if state is not None:
        from odp.validate.report import build_report, write_report

        write_report(state, build_report(result, dataset, reasons))
    if reasons:
        raise GateError(f"{dataset.name}: batch held back: {'; '.join(reasons)}")
