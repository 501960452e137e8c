"""Source type `derived`: a dataset computed from the project's own published datasets.

Its input is what an input dataset last published successfully — the ledger
`STATE/published/INPUT.parquet` — never its staging, so an indicator only ever sees validated,
georeferenced rows. The computation is an indicator of `odp.indicators` (e.g.
`heavy_rain_windows`), configured in the city file's `[indicators.NAME]` table. The result goes
through the same chain as any dataset: validate, georeference, publish.

    [source]
    type = "derived"
    indicator = "heavy_rain_windows"
    [source.inputs]                      # input dataset -> its regular UTC time step
    precipitation-dresden-10min = "10min"
    precipitation-dresden-hourly = "1h"

Optional: `unit` (the output column naming what a row is about, default station_id; e.g.
stadtteil_nr for values per district), `station`, `time`, `value` (the inputs' columns; default
station_id, timestamp, precipitation; `value` may be a list of columns, which the indicator then
gets under their own names instead of `value`, e.g. the pollutants of an air-quality table),
`carry` (station columns copied from the input's newest row of each station), `config`
(another table of `[indicators]`).

Incremental (dlt resource state, per input): the ledger's modification time and size (an
unchanged ledger is not read at all), its newest time, and a hash per station and UTC day of its
rows (the sum of the ledger's row hashes). A run recomputes only what new, changed or vanished
days touch (and the grid's growth to the input's newest time), compares the result with the
rows staging already holds there and yields only rows whose values changed, plus hard deletes of
staged rows no longer produced (e.g. an event that merged with another); dlt merges them on the
primary key. A changed indicator configuration recomputes everything.

Lineage: each row's `input` column names the input dataset, the run id of its last successful
publish (run history) and the ledger's modification time (UTC) that the row's values were
computed from; a row whose values did not change keeps the lineage of the run that last
changed it.

Order: a derived dataset runs after its inputs. An input never published fails the run with
the one-line SourceError "input X not yet published"; `run_order()` orders names so that inputs
come first (for callers running several datasets).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from odp.errors import ConfigError, SourceError
from odp.spec import Dataset

HASH = "_row_hash"  # the ledger's row hash (odp.publish.changes.HASH)
DELETED = "_deleted"  # hard-delete marker of a staged row (dlt merge), bookkeeping column
LINEAGE = "input"
RESOLUTION = "resolution"
DAY = 86_400 * 10**9
STAMP = "%Y-%m-%dT%H:%M:%SZ"
CARRY = ["station_name", "latitude", "longitude", "station_height"]


@dataclass(frozen=True)
class InputVersion:
    name: str
    path: Path
    mtime_ns: int
    size: int
    run_id: str  # the input's last successful run that published (history), "" if unknown
    modified: str  # the ledger's modification time, UTC ISO 8601

    @property
    def lineage(self) -> str:
        run = f"run {self.run_id}, " if self.run_id else ""
        return f"{self.name} ({run}published {self.modified})"


def input_version(state: Path, name: str, dataset: str) -> InputVersion:
    """The published version of an input; SourceError when it was never published."""
    path = state / "published" / f"{name}.parquet"
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise SourceError(f"{dataset}: input {name} not yet published (run `odp run {name}` "
                          "first)") from None
    modified = datetime.fromtimestamp(stat.st_mtime, UTC).strftime(STAMP)
    return InputVersion(name, path, stat.st_mtime_ns, stat.st_size, _last_publish(state, name),
                        modified)


def _last_publish(state: Path, name: str) -> str:
    """Run id of the input's newest run that published (status ok), read-only; "" if none."""
    db = state / "history.sqlite"
    if not db.exists():
        return ""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute("SELECT run_id FROM runs WHERE dataset = ? AND status = 'ok' "
                               "ORDER BY started DESC LIMIT 1", (name,)).fetchone()
    except sqlite3.Error:
        return ""
    return str(row[0]) if row else ""


# --- what changed -------------------------------------------------------------------------------


def day_hashes(stations: pd.Series, times: pd.Series,
               hashes: pd.Series) -> dict[str, dict[str, str]]:
    """Per station and UTC day (days since 1970 as text) a 48-bit hash of the day's rows
    (sum of their row hashes: independent of row order)."""
    if not len(stations):
        return {}
    ns = times.dt.tz_convert("UTC").dt.as_unit("ns").astype("int64").to_numpy()
    codes, names = pd.factorize(stations.astype("string"), sort=True)
    day = ns // DAY
    values = hashes.to_numpy(dtype=np.uint64)
    group = codes.astype(np.int64) * (1 << 32) + day
    if len(group) > 1 and (np.diff(group) < 0).any():  # a ledger is sorted by its key
        order = np.argsort(group, kind="stable")
        codes, day, values = codes[order], day[order], values[order]
    starts = np.flatnonzero(np.r_[True, (np.diff(codes) != 0) | (np.diff(day) != 0)])
    sums = np.add.reduceat(values, starts) & np.uint64(0xFFFFFFFFFFFF)
    out: dict[str, dict[str, str]] = {str(n): {} for n in names}
    for code, d, h in zip(codes[starts].tolist(), day[starts].tolist(), sums.tolist(),
                          strict=True):  # one entry per station and day, not per row
        out[str(names[code])][str(d)] = f"{h:012x}"
    return out


def changed_intervals(old: Mapping[str, Mapping[str, str]], new: Mapping[str, Mapping[str, str]],
                      old_end: int | None, new_end: int) -> dict[str, list[tuple[int, int]]]:
    """Per station the input intervals [lo, hi) (ns) whose rows are new, changed or gone, plus
    the grid's growth (or shrinking) to the input's newest time."""
    out: dict[str, list[tuple[int, int]]] = {}
    for station in sorted({*old, *new}):
        before, after = old.get(station, {}), new.get(station, {})
        if not after:  # the station is gone: everything it had
            first = min(int(d) for d in before) * DAY
            out[station] = [(first, max(old_end or new_end, new_end) + 1)]
            continue
        days = np.array(sorted(int(d) for d in {*before, *after}
                               if before.get(d) != after.get(d)), dtype=np.int64)
        intervals = []
        if len(days):
            breaks = np.flatnonzero(np.diff(days) > 1)
            firsts = days[np.r_[0, breaks + 1]]
            lasts = days[np.r_[breaks, len(days) - 1]]
            intervals = [(int(a) * DAY, (int(b) + 1) * DAY) for a, b in zip(firsts, lasts,
                                                                             strict=True)]
        if old_end is not None and old_end != new_end:
            intervals.append((min(old_end, new_end) + 1, max(old_end, new_end) + 1))
        if intervals:
            out[station] = intervals
    return out


# --- staging: what the dataset holds already -----------------------------------------------------


def staged_columns(staging: Path, table: str) -> set[str]:
    """The columns of the dataset's staged table (empty: no staging or no table yet)."""
    if not staging.exists():
        return set()
    import duckdb

    from odp.extract import STAGING_SCHEMA

    with duckdb.connect(str(staging), read_only=True) as con:
        return {row[0] for row in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
            "AND table_name = ?", [STAGING_SCHEMA, table]).fetchall()}


def staged_rows(staging: Path, table: str, columns: list[str], spans: pd.DataFrame,
                time_column: str, unit: str = "station_id") -> pd.DataFrame:
    """Rows staging holds within the spans (station_id, resolution, lo, hi as text; the spans'
    station_id is the output's `unit` column), as text."""
    empty = pd.DataFrame({c: pd.Series(dtype="string") for c in columns})
    present = staged_columns(staging, table)
    if not present or spans.empty:
        return empty
    import duckdb

    from odp.extract import STAGING_SCHEMA

    with duckdb.connect(str(staging), read_only=True) as con:
        con.register("spans", spans)
        wanted = ", ".join(f't."{c}"' for c in columns if c in present)
        # a join (not a correlated subquery); the time bounds let DuckDB skip row groups
        frame = con.execute(
            f'SELECT DISTINCT {wanted} FROM {STAGING_SCHEMA}."{table}" t JOIN spans s '
            f'ON t."{unit}" = s.station_id AND t.{RESOLUTION} = s.{RESOLUTION} '
            f'AND t."{time_column}" BETWEEN s.lo AND s.hi WHERE t."{time_column}" BETWEEN ? '
            'AND ?', [str(spans["lo"].min()), str(spans["hi"].max())]).df()
    for column in columns:
        frame[column] = frame[column].astype("string") if column in frame else pd.NA
    return frame[columns].astype("string")


def as_text(rows: pd.DataFrame, columns: list[str]) -> pa.Table:
    """The rows as text columns (numbers in their shortest form, times `…Z` in UTC) — the raw
    text every source delivers to validation — via Arrow (fast on millions of rows)."""
    arrays = []
    for column in columns:
        if column not in rows:
            arrays.append(pa.nulls(len(rows), pa.string()))
            continue
        values = rows[column]
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            stamp = pc.cast(pa.array(values.dt.tz_convert("UTC")), pa.timestamp("s", "UTC"),
                            safe=False)
            arrays.append(pc.strftime(stamp, format=STAMP))
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            arrays.append(pc.cast(pa.array(values, from_pandas=True), pa.string()))
        else:
            arrays.append(pa.array(values.astype("string"), type=pa.string(), from_pandas=True))
    return pa.Table.from_arrays(arrays, names=columns)


def changes(new: pd.DataFrame, old: pd.DataFrame, key: list[str],
            ignore: Sequence[str] = (LINEAGE,)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows to upsert: new or with other values than staged, ignoring lineage; keys of staged
    rows to delete: not produced any more). Both text frames with the same columns."""
    values = [c for c in new.columns if c not in key and c not in ignore]
    marked = old.assign(__staged=True)
    both = new.merge(marked[key + values + ["__staged"]], on=key, how="left",
                     suffixes=("", "__old"))
    same = np.array(both["__staged"].fillna(False), dtype=bool)  # a writable copy
    for column in values:
        a, b = both[column], both[f"{column}__old"]
        same &= ((a == b).fillna(False) | (a.isna() & b.isna())).to_numpy(dtype=bool)
    upserts = new[~same]
    gone = old.merge(new[key].assign(__kept=True), on=key, how="left")
    deletes = old[gone["__kept"].isna().to_numpy()]
    return upserts, deletes


# --- the resource --------------------------------------------------------------------------------


def _step(text: str, where: str) -> int:
    try:
        step = pd.Timedelta(text)
    except ValueError:
        raise ConfigError(f"{where}: input step '{text}' is not a duration (10min, 1h)") from None
    if step <= pd.Timedelta(0) or step > pd.Timedelta("1D") or pd.Timedelta("1D") % step:
        raise ConfigError(f"{where}: input step '{text}' must divide a day")
    return int(step.value)


def _with_deleted(table: pa.Table, deleted: bool) -> pa.Table:
    flag = pa.array([True] * len(table) if deleted else [None] * len(table), type=pa.bool_())
    return table.append_column(DELETED, flag)


@dlt.resource(write_disposition="merge", columns={DELETED: {"data_type": "bool",
                                                            "hard_delete": True}})
def derived_rows(
    dataset: str,
    inputs: dict[str, str],
    indicator: str,
    config: dict[str, Any],
    columns: list[str],
    key: list[str],
    time_column: str,
    state_dir: str,
    staging: str,
    station: str = "station_id",
    time: str = "timestamp",
    value: str | list[str] = "precipitation",
    carry: list[str] | None = None,
    unit: str = "station_id",
) -> Iterator[pa.Table]:
    """Rows of an indicator over published datasets, recomputed where their inputs changed.

    Args:
        dataset: the derived dataset's name (for messages).
        inputs: input dataset name -> its regular UTC time step ("10min", "1h").
        indicator: an indicator of `odp.indicators.INDICATORS`.
        config: the indicator's configuration (the city file's `[indicators.NAME]` table).
        columns: the output columns (the schema's source fields), delivered as text.
        key: the output's primary key (contains `unit`, `resolution` and `time_column`).
        time_column: the output column spans of recomputation refer to (e.g. timestamp, start).
        state_dir: the project's state folder (ledgers `published/NAME.parquet`, history).
        staging: the dataset's staging DuckDB file (rows it holds are compared, not re-sent).
        station: the inputs' station column.
        time: the inputs' UTC time column (end of each interval).
        value: the inputs' value column, or a list of columns the indicator reads by name.
        carry: station columns copied from each station's newest input row.
        unit: the output column the indicator's spans name (station_id; e.g. stadtteil_nr for
            values per district).

    Yields:
        Arrow tables of text columns (changed rows) and of keys with `_deleted` = true.
    """
    from odp.indicators import indicator as find

    found = find(indicator, dataset)
    compute = found.compute
    settings = found.parse(config, f"{dataset}: [indicators] configuration")
    carry = list(CARRY if carry is None else carry)
    state = dlt.current.resource_state()
    digest = hashlib.sha256(json.dumps([indicator, config, inputs, columns, key, station, time,
                                        value, carry, unit], sort_keys=True,
                                       default=str).encode()).hexdigest()
    if state.get("digest") != digest:  # another computation: everything again
        state["digest"], state["inputs"] = digest, {}
    seen_all = state.setdefault("inputs", {})
    versions = [input_version(Path(state_dir), name, dataset) for name in inputs]
    table = dataset.replace("-", "_")
    if not staged_columns(Path(staging), table):  # staging gets the table even without rows
        yield _with_deleted(as_text(pd.DataFrame(), columns), False)
    for version in versions:
        seen = seen_all.get(version.name, {})
        if seen.get("version") == [version.mtime_ns, version.size]:
            continue  # the ledger is unchanged since the last committed run
        step = _step(inputs[version.name], dataset)
        values = [value] if isinstance(value, str) else list(value)
        frame = _read_input(version, [station, time, *values], carry, dataset)
        ns = frame[time].dt.tz_convert("UTC").dt.as_unit("ns").astype("int64")
        off = int((ns.to_numpy() % step != 0).sum())
        if off:
            raise SourceError(f"{dataset}: input {version.name}: {off} of {len(ns)} times are "
                              f"not on its {inputs[version.name]} UTC grid (is the step in "
                              "[source.inputs] right?)")
        new_end = int(ns.max()) if len(frame) else int(seen.get("end") or 0)
        days = day_hashes(frame[station], frame[time], frame[HASH])
        changed = changed_intervals(seen.get("days", {}), days, seen.get("end"), new_end)
        if changed:
            series = _series(frame, station, time, value)
            result = compute(series, step, changed, new_end, settings)
            yield from _delta(result, frame, version, inputs[version.name], dataset, columns,
                              key, time_column, Path(staging), (station, time, unit), carry)
        seen_all[version.name] = {"version": [version.mtime_ns, version.size], "end": new_end,
                                  "days": days}


def _series(frame: pd.DataFrame, station: str, time: str, value: str | list[str]) -> pd.DataFrame:
    """The indicator's input: station_id, timestamp and `value` (or each listed column by its
    name: numbers as Float64, anything else as text)."""
    series = pd.DataFrame({"station_id": frame[station].astype("string"), "timestamp": frame[time]})
    if isinstance(value, str):
        series["value"] = frame[value].astype("Float64")
        return series
    for column in value:
        numeric = pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(
            frame[column])
        series[column] = frame[column].astype("Float64" if numeric else "string")
    return series


def _read_input(version: InputVersion, needed: list[str], carry: list[str],
                dataset: str) -> pd.DataFrame:
    import pyarrow.parquet as pq

    names = set(pq.read_schema(version.path).names)
    missing = [c for c in needed if c not in names]
    if missing:
        raise SourceError(f"{dataset}: input {version.name}: {version.path.name} has no column "
                          f"{', '.join(missing)}")
    columns = [c for c in dict.fromkeys([*needed, *carry]) if c in names]
    frame = pd.read_parquet(version.path, columns=columns + ([HASH] if HASH in names else []))
    if HASH not in frame:
        frame[HASH] = pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()
    return frame


def _newest(frame: pd.DataFrame, station: str, time: str) -> pd.DataFrame:
    """Each station's newest row (a ledger is sorted by its key: station, time)."""
    codes = pd.factorize(frame[station])[0]
    stamps = frame[time].dt.tz_convert("UTC").dt.as_unit("ns").astype("int64").to_numpy()
    if len(codes) and (np.diff(codes) >= 0).all() and (
            (np.diff(codes) > 0) | (stamps[1:] >= stamps[:-1])).all():
        return frame.iloc[np.flatnonzero(np.r_[codes[1:] != codes[:-1], True])]
    return frame.sort_values([station, time], kind="stable").groupby(station).tail(1)


def _delta(result: Any, frame: pd.DataFrame, version: InputVersion, resolution: str,
           dataset: str, columns: list[str], key: list[str], time_column: str, staging: Path,
           names: tuple[str, str, str], carry: list[str]) -> Iterator[pa.Table]:
    """The computed rows with station attributes, resolution and lineage; only those staging
    does not hold with these values, and deletions of staged rows in the spans not produced."""
    station, time, unit = names
    rows = result.rows
    present = [c for c in carry if c in frame.columns]
    if present and len(rows):
        newest = _newest(frame, station, time)
        attributes = newest[[station, *present]].rename(columns={station: "station_id"})
        attributes["station_id"] = attributes["station_id"].astype("string")
        rows = rows.astype({"station_id": "string"}).merge(attributes, on="station_id",
                                                           how="left")
    rows = rows.assign(**{RESOLUTION: resolution, LINEAGE: version.lineage})
    text = as_text(rows, columns)
    spans = result.spans.assign(**{RESOLUTION: resolution})
    spans["lo"] = spans["lo"].dt.strftime(STAMP)
    spans["hi"] = spans["hi"].dt.strftime(STAMP)
    old = staged_rows(staging, dataset.replace("-", "_"), columns, spans, time_column, unit)
    if old.empty:
        if text.num_rows:
            yield _with_deleted(text, False)
        return
    upserts, deletes = changes(text.to_pandas(types_mapper=pd.ArrowDtype).astype("string"),
                               old, key)
    if len(upserts):
        yield _with_deleted(as_text(upserts, columns), False)
    if len(deletes):
        yield _with_deleted(as_text(deletes, columns), True)


@dlt.source(name="derived")
def derived_source(dataset: str, inputs: dict[str, str], indicator: str, config: dict[str, Any],
                   columns: list[str], key: list[str], time_column: str, state_dir: str,
                   staging: str) -> Any:
    """A derived dataset as a dlt source (one resource), for use outside odp's runs.

    Args:
        dataset: the derived dataset's name (its table).
        inputs: input dataset name -> its regular UTC time step.
        indicator: an indicator of `odp.indicators.INDICATORS`.
        config: the indicator's configuration table.
        columns: the output columns.
        key: the output's primary key.
        time_column: the output column recomputation spans refer to.
        state_dir: the project's state folder.
        staging: the dataset's staging DuckDB file.
    """
    return derived_rows(dataset, inputs, indicator, config, columns, key, time_column,
                        state_dir, staging).with_name(dataset.replace("-", "_"))


# --- the factory -------------------------------------------------------------------------------


def indicator_config(dataset: Dataset, table: str) -> dict[str, Any]:
    """The city file's `[indicators.TABLE]` for a dataset (the project's city)."""
    from odp.spec import load_city

    root = dataset.definition_path.parent.parent
    city = load_city(root)
    with city.path.open("rb") as fh:
        found = tomllib.load(fh).get("indicators", {}).get(table)
    if not isinstance(found, dict):
        raise ConfigError(f"{city.path}: no [indicators.{table}] table (needed by "
                          f"{dataset.definition_path})")
    return found


def derived(dataset: Dataset, *, indicator: str, inputs: dict[str, str],
            config: str | None = None, unit: str = "station_id", station: str = "station_id",
            time: str = "timestamp", value: str | list[str] = "precipitation",
            carry: list[str] | None = None, time_column: str | None = None) -> Any:
    """The dlt resource of a `derived` dataset (source type registry).

    Args:
        dataset: the dataset the rows are staged for (name, schema, extract mode).
        indicator: the indicator of odp.indicators that computes the rows.
        inputs: input dataset -> its regular UTC time step ("10min", "1h", …).
        config: the city file's `[indicators.NAME]` table (default: the indicator's own).
        unit: the output column naming what a row is about (e.g. stadtteil_nr).
        station: the inputs' station column.
        time: the inputs' time column.
        value: the inputs' value column, or a list of columns the indicator gets by name.
        carry: station columns copied from each station's newest input row.
        time_column: the output's time column (default the primary key's last).
    """
    from odp.indicators import indicator as find
    from odp.spec import state_dir

    where = str(dataset.definition_path)
    if not inputs:
        raise ConfigError(f"{where}: [source.inputs] maps input datasets to their time step")
    for name, step in inputs.items():
        _step(step, where)
        if name == dataset.name:
            raise ConfigError(f"{where}: a derived dataset cannot be its own input")
    found = find(indicator, where)
    table = config or found.table
    settings = indicator_config(dataset, table)
    if found.city:  # e.g. the city's districts: read from the project the dataset belongs to
        settings = {**settings, "_root": str(dataset.definition_path.parent.parent)}
    found.parse(settings, f"[indicators.{table}]")  # checked early
    key = list(dataset.schema.primary_key)
    if unit not in key or RESOLUTION not in key:
        raise ConfigError(f"{where}: the primary key must contain {unit} and {RESOLUTION}")
    state = state_dir(dataset.definition_path.parent.parent)
    resource = derived_rows(
        dataset=dataset.name,
        inputs=dict(inputs),
        indicator=indicator,
        config=settings,
        columns=[f.name for f in dataset.schema.source_fields],
        key=key,
        time_column=time_column or key[-1],
        state_dir=str(state),
        staging=str(state / "staging" / f"{dataset.table_name}.duckdb"),
        station=station,
        time=time,
        value=_value(value, where),
        carry=list(CARRY if carry is None else carry),
        unit=unit,
    ).with_name(dataset.table_name)
    resource.apply_hints(primary_key=key)
    return resource


def _value(given: str | list[str], where: str) -> str | list[str]:
    if isinstance(given, str) and given:
        return given
    if isinstance(given, list) and given and all(c for c in given):
        return list(given)
    raise ConfigError(f"{where}: [source] value must name the input's value column or list the "
                      "columns the indicator reads")


def inputs_of(dataset: Dataset) -> list[str]:
    """The datasets a dataset is computed from (the `[source.inputs]` of the source types that
    read other datasets' published tables: `derived` and `situation`)."""
    if dataset.source.get("type") not in ("derived", "situation"):
        return []
    return list((dataset.source.get("inputs") or {}).keys())


def run_order(names: Sequence[str], root: Path) -> list[str]:
    """`names` reordered so that every derived dataset comes after those of its inputs that are
    among them; otherwise in the given order (a cycle keeps the given order)."""
    from odp.spec import load_dataset

    wanted = list(dict.fromkeys(names))
    needs = {n: [i for i in inputs_of(load_dataset(n, root)) if i in wanted] for n in wanted}
    ordered: list[str] = []
    while len(ordered) < len(wanted):
        ready = [n for n in wanted if n not in ordered and all(i in ordered for i in needs[n])]
        if not ready:  # a cycle: the rest as given
            ordered += [n for n in wanted if n not in ordered]
            break
        ordered.append(ready[0])
    return ordered
