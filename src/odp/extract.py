"""Extract: run a dataset's dlt resource into its local staging database.

dlt keeps the incremental state (e.g. the last timestamp fetched) and merges re-delivered rows on
the primary key, so staging never holds duplicates. Staging is a per-dataset DuckDB file; the
publish stage compares it with what was last published, so a run that failed after extracting
loses nothing: the next run publishes what staging still holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from odp.errors import OdpError, SourceError
from odp.spec import Dataset

STAGING_SCHEMA = "staging"


@dataclass(frozen=True)
class Extracted:
    table: pd.DataFrame  # everything staging holds for the dataset (raw text + _dlt columns)
    new_rows: int  # rows the source delivered in this run (before merging on the key)
    load_id: str | None


def _pipeline(dataset: Dataset, state: Path):  # -> dlt.Pipeline
    import dlt

    staging = state / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    return dlt.pipeline(
        pipeline_name=f"odp_{dataset.table_name}",
        pipelines_dir=str(state / "dlt"),
        destination=dlt.destinations.duckdb(str(staging / f"{dataset.table_name}.duckdb")),
        dataset_name=STAGING_SCHEMA,
    )


def _unwrap(exc: BaseException) -> OdpError | None:
    """dlt wraps errors raised inside a resource; find ours for a clean one-line message."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OdpError):
            return current
        seen.add(id(current))
        current = getattr(current, "exception", None) or current.__cause__ or current.__context__
    return None


def extract(dataset: Dataset, state: Path) -> Extracted:
    from dlt.pipeline.exceptions import PipelineStepFailed

    from odp.sources import make_resource

    pipeline = _pipeline(dataset, state)
    try:
        info = pipeline.run(make_resource(dataset))
    except PipelineStepFailed as exc:
        ours = _unwrap(exc)
        if ours is not None:
            raise ours from None
        raise SourceError(f"{dataset.name}: extract failed in step '{exc.step}': {exc}") from None
    load_id = info.loads_ids[0] if info.loads_ids else None
    normalized = pipeline.last_trace.last_normalize_info
    new_rows = normalized.row_counts.get(dataset.table_name, 0) if normalized else 0
    return Extracted(table=read_staging(dataset, state), new_rows=new_rows, load_id=load_id)


def read_staging(dataset: Dataset, state: Path) -> pd.DataFrame:
    """All rows staging holds for the dataset (empty if nothing was ever extracted)."""
    import duckdb

    path = state / "staging" / f"{dataset.table_name}.duckdb"
    if not path.exists():
        return pd.DataFrame()
    with duckdb.connect(str(path), read_only=True) as con:
        exists = con.execute(
            "select count(*) from information_schema.tables where table_schema = ? "
            "and table_name = ?",
            [STAGING_SCHEMA, dataset.table_name],
        ).fetchone()
        if not exists or not exists[0]:
            return pd.DataFrame()
        return con.execute(f'select * from {STAGING_SCHEMA}."{dataset.table_name}"').df()
