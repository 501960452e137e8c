"""The gate: hold a batch back when too many rows were rejected or the batch failed as a whole."""

from __future__ import annotations

from typing import TYPE_CHECKING

from odp.errors import GateError
from odp.spec import Dataset

if TYPE_CHECKING:
    from odp.validate import ValidationResult


def check_gate(result: ValidationResult, dataset: Dataset) -> None:
    """Raise GateError (one line) if the batch must not be published; an empty batch passes."""
    if result.batch_errors:
        raise GateError(f"{dataset.name}: batch held back: {'; '.join(result.batch_errors)}")
    limit = dataset.max_quarantine_share
    if result.rejected_rows and result.share_rejected >= limit:
        first = result.messages(limit=1)[0].removeprefix(f"{dataset.name}: ")
        raise GateError(
            f"{dataset.name}: batch held back: {result.rejected_rows} of {result.total} rows "
            f"rejected ({result.share_rejected:.1%}, limit {limit:.1%}); first: {first}"
        )
