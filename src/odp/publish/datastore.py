"""The two ways rows reach a CKAN DataStore table — same table, same result.

`ApiLoader` — the action API, for any portal: large batches encoded once, several requests in
flight (capped for remote portals, see `Portal.parallel_limit`). An update that fits one request
(`atomic_rows`) is sent as ONE `datastore_upsert`, which CKAN runs in one transaction, so readers
see the old table or the new one: new and changed rows, and gone rows overwritten in place (by
their `_id`) with new rows' values. CKAN's action API has no request that removes rows and writes
others, so only an update removing more rows than it adds needs a second request
(`datastore_delete` by `_id`) for the rest, right after the first. Rows CKAN's upsert overwrote
kept their old `_full_text` (its trigger keeps a filled one): an `update` of the same rows
recomputes it. A larger update goes in several requests, and readers may see it partly applied.

`CopyLoader` — PostgreSQL `COPY` straight into the DataStore's table, as CKAN's XLoader does,
when the DataStore's write database is known (ODP_DATASTORE_WRITE_URL, the city's
`portal.datastore_write_url_env`, or the file its `portal.datastore_write_url_file` names — the
local portal's, written by `odp portal start`; a database on another machine only with
`sslmode=require` or stronger, checked before a run writes anything). CKAN still creates the table
(`datastore_create`: typed columns, primary key, indexes, data dictionary, `datastore_active`);
the rows then go in with one transaction per run: new rows by `COPY` into a temporary table +
one `INSERT … SELECT` computing `_full_text` with the trigger's own expression, changed rows by
`COPY` into a temporary table + `INSERT … ON CONFLICT (key) DO UPDATE`, gone rows by `DELETE …
USING`. CKAN's full-text trigger stays on, so `datastore_search?q=` finds the same rows as after
an API load.

A bulk load (at least `bulk_min_rows` new rows, and at least as many as the table holds) takes
the way XLoader takes, but beside the live table (`Rebuild`), inside the same one transaction:
the new rows are COPYed into an unlogged staging table, one `CREATE TABLE … AS SELECT` writes a
new table of the live rows and the staged ones with `_full_text` computed set-wise by exactly
the trigger's expression (PostgreSQL may spread that over parallel workers; the trigger leaves a
filled `_full_text` alone), every column definition, index, key, trigger and grant is created
from the live table's own definitions, the changed and gone rows are applied, and the new table
is swapped in under the live table's name. Readers read the old table meanwhile and never see
it empty, half-built or locked for longer than the swap. CKAN's per-row trigger (row → JSON →
tsvector) and index maintenance row by row otherwise cap COPY into a DataStore table at ~30k
rows/s.

A row whose text may be too long for a tsvector (`odp.publish.limits`) never blocks a dataset:
on the COPY path every `_full_text` is computed by odp (inserts, bulk loads and upserts alike),
and for such a row from its values up to the safe size, cut to a length that always fits — the
row is stored whole, only its over-long values are not found by `q=`. CKAN's action API cannot
set `_full_text` (its trigger computes it from the whole row): when PostgreSQL refuses one, CKAN
rolls the whole request back, and `ApiLoader` sends the other rows as one request and such rows
one by one after it, holding back, with a note naming them, the ones PostgreSQL refuses.

Both loaders read a table back (`read`: COPY TO, or `datastore_search` paged by `_id`) for
`odp.publish.reconcile`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import pandas as pd
from ckanapi.errors import ValidationError

from odp.errors import PublishError
from odp.publish import limits
from odp.publish.changes import DELETED_AT, HASH, as_frame, column_names, frames
from odp.publish.ledgerfile import KEY_HASH
from odp.publish.portal import Portal
from odp.spec import City, Dataset

if TYPE_CHECKING:
    from odp.publish.ledgerfile import Merged

DATASTORE_TYPES = {
    "string": "text",
    "integer": "int8",
    "number": "float8",
    "boolean": "bool",
    "datetime": "timestamp",
    "date": "date",
}
WRITE_URL_ENV = "ODP_DATASTORE_WRITE_URL"
LOAD_ENV = "ODP_DATASTORE_LOAD"  # api | copy | auto (default: copy when a write URL is known)

Progress = Callable[[str], None]


def fields(dataset: Dataset, columns: list[str]) -> list[dict[str, Any]]:
    """Typed columns with their data dictionary (label, description, unit)."""
    out = []
    for name in columns:
        if name == DELETED_AT:
            out.append({"id": name, "type": "timestamp", "info": {
                "label": "Gelöscht am (UTC)",
                "notes": "Zeitpunkt, zu dem die Zeile aus der Quelle verschwand; leer = aktuell"}})
            continue
        f = dataset.schema.field(name)
        notes = f.description
        if f.unit:
            notes = f"{notes} (Einheit: {f.unit})".strip()
        info = {"label": f.title or f.name, "notes": notes}
        out.append({"id": f.name, "type": DATASTORE_TYPES.get(f.type, "text"), "info": info})
    return out


class Loader(Protocol):
    name: str
    reads_from_disk: bool  # `load` takes new rows on disk (`Merged`), else only frames
    notes: list[str]  # what a load did that a reader should know (rows held back, …)
    writes: int  # write transactions outside the action API (COPY); the API counts its own

    def read(self, resource_id: str, columns: list[str]) -> Any:
        """The table's `columns` as a pyarrow table of text (NULL stays null)."""
        ...

    def create(self, resource_id: str, fields: list[dict[str, Any]], key: list[str]) -> None: ...

    def load(self, resource_id: str, insert: pd.DataFrame, upsert: pd.DataFrame,
             delete: pd.DataFrame, key: list[str], redo: bool = False,
             rows_before: int | None = None) -> None:
        """Insert new rows, overwrite changed ones, delete gone keys (any may be empty).
        `redo`: an earlier run may have written some of it already — new rows are upserted.
        `rows_before`: the rows the table holds as the changes were found against it (the
        last ledger's), when known."""
        ...


def _create(portal: Portal, resource_id: str, fields: list[dict[str, Any]],
            key: list[str]) -> None:
    # The primary key gets CKAN's unique index; per-column indexes only for a compound key
    # (for a one-column key CKAN would name both indexes alike and fail with HTTP 500).
    portal.call("datastore_create", resource_id=resource_id, force=True, fields=fields,
                primary_key=key, indexes=key if len(key) > 1 else [])


def records_json(table: pd.DataFrame, columns: list[str]) -> str:
    """A JSON array of rows: NA → null, datetimes ISO 8601 UTC."""
    return table[columns].to_json(orient="records", date_format="iso", date_unit="s")


class ApiLoader:
    name = "api"
    reads_from_disk = False  # `load` takes frames

    def __init__(self, portal: Portal, batch_rows: int = 20_000, atomic_rows: int = 50_000,
                 workers: int | None = None, progress: Progress | None = None) -> None:
        self.portal = portal
        self.batch_rows, self.atomic_rows = batch_rows, atomic_rows
        self.workers = min(workers or portal.parallel_limit, portal.parallel_limit)
        self.progress = progress or (lambda _msg: None)
        self.notes: list[str] = []
        self.writes = 0

    def create(self, resource_id: str, fields: list[dict[str, Any]], key: list[str]) -> None:
        _create(self.portal, resource_id, fields, key)

    def read(self, resource_id: str, columns: list[str], page: int = 10_000) -> Any:
        """Every row through `datastore_search`, paged by `_id` (keyset, as CKAN's dump)."""
        import pyarrow as pa

        values: dict[str, list[str | None]] = {c: [] for c in columns}
        after: dict[str, Any] = {}
        while True:
            found = self.portal.call("datastore_search", resource_id=resource_id,
                                     fields=columns, sort="_id", records_format="lists",
                                     include_total=False, include_next_page=True, limit=page,
                                     filters=after)
            for record in found["records"]:
                for name, value in zip(columns, record, strict=True):
                    values[name].append(_as_text(value))
            if len(found["records"]) < page or not found.get("next_page"):
                break
            after = found["next_page"]
        return pa.table({c: pa.array(v, type=pa.large_string()) for c, v in values.items()})

    def load(self, resource_id: str, insert: pd.DataFrame, upsert: pd.DataFrame,
             delete: pd.DataFrame, key: list[str], redo: bool = False,
             rows_before: int | None = None) -> None:
        insert, upsert = insert.drop(columns=[HASH], errors="ignore"), upsert.drop(
            columns=[HASH], errors="ignore")
        if insert.empty and upsert.empty and delete.empty:
            return
        if len(insert) + len(upsert) > self.atomic_rows:
            self._load_in_batches(resource_id, insert, upsert, delete, key, redo)
            return
        ids = self._row_ids(resource_id, delete, key)
        long = insert.iloc[0:0]
        try:
            moved, stale = self._switch(resource_id, insert, upsert, ids, redo)
        except ValidationError as exc:
            if not _refused(exc, "too long for tsvector"):
                raise
            # PostgreSQL refused a row's full text and CKAN rolled the request back: the
            # other rows go in as one request, the over-long ones one by one after it.
            long_insert = limits.long_text_rows(insert, list(insert.columns))
            long_upsert = limits.long_text_rows(upsert, list(upsert.columns))
            long = pd.concat([insert[long_insert], upsert[long_upsert]], ignore_index=True)
            insert, upsert = insert[~long_insert], upsert[~long_upsert]
            moved, stale = self._switch(resource_id, insert, upsert, ids, redo)
        if len(ids) > moved:  # more rows gone than new: the rest needs a request of its own
            self._delete_ids(resource_id, ids[moved:])
        if stale:  # CKAN's upsert kept the overwritten rows' old full text: recompute it
            refresh = pd.concat([t for t in (upsert, insert.iloc[:moved]) if not t.empty],
                                ignore_index=True)
            self._send(resource_id, self._batches(refresh), "update")
        if not long.empty:
            self._send_long(resource_id, long, key)

    def _switch(self, resource_id: str, insert: pd.DataFrame, upsert: pd.DataFrame,
                ids: list[int], redo: bool) -> tuple[int, bool]:
        """New and changed rows — and gone ones, as far as there are new rows to take their
        place — in ONE `datastore_upsert`, one transaction in CKAN: a reader sees the old
        table or the new one. A gone row is overwritten in place (matched by its `_id`) with a
        new row's values, key included, so it goes without a delete request. Returns how many
        of `ids` were used so, and whether overwritten rows kept their old full text (CKAN's
        upsert does not recompute `_full_text` of a row it updates)."""
        moved = min(len(ids), len(insert))
        if insert.empty and upsert.empty:
            return 0, False
        parts = [records_json(upsert, list(upsert.columns)) if not upsert.empty else "",
                 records_json(insert.iloc[:moved].assign(_id=ids[:moved]),
                              ["_id", *insert.columns]) if moved else "",
                 records_json(insert.iloc[moved:], list(insert.columns))
                 if len(insert) > moved else ""]
        records = "[" + ",".join(p[1:-1] for p in parts if p and p != "[]") + "]"
        if not insert.empty:
            method = "insert" if upsert.empty and not moved and not redo else "upsert"
            self.progress(f"DataStore {method}: {len(insert) + len(upsert)} rows "
                          f"({moved} in place of gone rows) in one request")
            self._upsert_body(resource_id, method, records)
            return moved, method == "upsert" and (moved > 0 or not upsert.empty)
        # Only changed rows: `update` recomputes their full text as well; a row the table
        # lacks after all (removed by hand) is upserted instead.
        self.progress(f"DataStore update: {len(upsert)} rows in one request")
        try:
            self._upsert_body(resource_id, "update", records)
        except ValidationError as exc:
            if not _refused(exc, "not found"):
                raise
            self._upsert_body(resource_id, "upsert", records)
            return 0, True
        return 0, False

    def _upsert_body(self, resource_id: str, method: str, records: str) -> None:
        head = json.dumps({"resource_id": resource_id, "method": method, "force": True,
                           "calculate_record_count": False})[:-1]
        try:
            self.portal.call("datastore_upsert", body=f'{head}, "records": {records}}}'.encode())
        except ValidationError as exc:
            if method != "insert" or not _refused(exc, "duplicate key"):
                raise
            # A retried insert whose first try took effect although its answer was lost
            # (a 5xx after the commit): as an upsert it gives the same table, once.
            self._upsert_body(resource_id, "upsert", records)

    def _load_in_batches(self, resource_id: str, insert: pd.DataFrame, upsert: pd.DataFrame,
                         delete: pd.DataFrame, key: list[str], redo: bool) -> None:
        """An update larger than one request (`atomic_rows`): several requests, so a reader
        may see it partly applied while it is sent (the COPY path has no such limit)."""
        if redo:
            insert, upsert = insert.iloc[0:0], pd.concat([upsert, insert], ignore_index=True)
        long_insert = limits.long_text_rows(insert, list(insert.columns))
        long_upsert = limits.long_text_rows(upsert, list(upsert.columns))
        long = pd.concat([insert[long_insert], upsert[long_upsert]], ignore_index=True)
        insert, upsert = insert[~long_insert], upsert[~long_upsert]
        self.progress(f"DataStore: {len(insert) + len(upsert)} rows are more than one request "
                      f"holds ({self.atomic_rows}): sent in batches")
        self._send(resource_id, self._batches(insert), "insert")
        self._send(resource_id, self._batches(upsert), "upsert")
        self._send(resource_id, self._batches(upsert), "update")  # fresh full text
        self._delete_ids(resource_id, self._row_ids(resource_id, delete, key))
        if not long.empty:
            self._send_long(resource_id, long, key)

    def _row_ids(self, resource_id: str, keys: pd.DataFrame, key: list[str]) -> list[int]:
        """The `_id` of each row of the table with one of `keys` (those it still has)."""
        if keys.empty:
            return []
        values = json.loads(records_json(keys, key))
        if len(key) == 1:  # {"id": [..]} is SQL `IN`
            chunks = [{key[0]: [v[key[0]] for v in values[i : i + 1000]]}
                      for i in range(0, len(values), 1000)]
        else:
            step = max(1, 90 // (len(key) + 1))  # CKAN allows 100 filter operations per call
            chunks = [{"$or": values[i : i + step]} for i in range(0, len(values), step)]
        ids: list[int] = []
        for filters in chunks:
            found = self.portal.call("datastore_search", resource_id=resource_id,
                                     filters=filters, fields=["_id"], records_format="lists",
                                     include_total=False, limit=1000, sort="_id")
            ids += [int(record[0]) for record in found["records"]]
        return ids

    def _delete_ids(self, resource_id: str, ids: list[int]) -> None:
        """Rows by `_id`, 10,000 a request (each one transaction)."""
        if ids:
            self.progress(f"DataStore delete: {len(ids)} rows")
        for i in range(0, len(ids), 10_000):
            self.portal.call("datastore_delete", resource_id=resource_id,
                             filters={"_id": ids[i : i + 10_000]}, force=True,
                             calculate_record_count=False)

    def _send_long(self, resource_id: str, rows: pd.DataFrame, key: list[str]) -> None:
        """Rows whose text may overflow CKAN's full-text column, one request each. CKAN's
        trigger computes `_full_text` from the whole row and the action API cannot set it, so
        a row PostgreSQL refuses ("string is too long for tsvector") cannot enter the table
        this way: it is held back (an older version of it removed, so the table never shows
        a stale row) and named in a note — the files beside the table hold it whole. Every
        other row is written: one such cell never blocks the dataset."""
        held = []
        for i in range(len(rows)):
            row = rows.iloc[i : i + 1]
            body = (json.dumps({"resource_id": resource_id, "method": "upsert", "force": True,
                                "calculate_record_count": False})[:-1]
                    + f', "records": {records_json(row, list(row.columns))}}}')
            try:
                self.portal.call("datastore_upsert", body=body.encode())
            except ValidationError as exc:
                if "too long for tsvector" not in str(exc):
                    raise
                held.append(i)
        if not held:
            return
        gone = rows.iloc[held][key]
        self._delete(resource_id, gone, key)
        keys = ", ".join("/".join(str(v) for v in r) for r in gone.head(5).itertuples(
            index=False))
        more = f" and {len(gone) - 5} more" if len(gone) > 5 else ""
        self.notes.append(
            f"{len(gone)} row(s) not in the DataStore table: their text is too long for "
            f"CKAN's full-text index (PostgreSQL's tsvector holds at most 1 MB) and the action "
            f"API cannot leave it out; the CSV and Parquet files hold them whole "
            f"(key {keys}{more}). The COPY path (a DataStore write URL) stores them.")

    def _batches(self, table: pd.DataFrame) -> list[pd.DataFrame]:
        return [table.iloc[i : i + self.batch_rows] for i in range(0, len(table), self.batch_rows)]

    def _send(self, resource_id: str, batches: list[pd.DataFrame], method: str) -> None:
        batches = [b for b in batches if not b.empty]
        if not batches:
            return

        def send(batch: pd.DataFrame) -> None:
            self._upsert_body(resource_id, method, records_json(batch, list(batch.columns)))

        total = sum(len(b) for b in batches)
        self.progress(f"DataStore {method}: {total} rows in {len(batches)} request(s)")
        if self.workers <= 1 or len(batches) == 1:
            for batch in batches:
                send(batch)
            return
        with ThreadPoolExecutor(self.workers) as pool:
            for future in [pool.submit(send, b) for b in batches]:
                future.result()  # re-raises the first failure

    def _delete(self, resource_id: str, keys: pd.DataFrame, key: list[str]) -> None:
        if keys.empty:
            return
        values = json.loads(records_json(keys, key))
        if len(key) == 1:  # one call per 1,000 keys: {"id": [..]} is SQL `IN`
            for i in range(0, len(values), 1000):
                chunk = [v[key[0]] for v in values[i : i + 1000]]
                self.portal.call("datastore_delete", resource_id=resource_id,
                                 filters={key[0]: chunk}, force=True)
            return
        step = max(1, 90 // (len(key) + 1))  # CKAN allows 100 filter operations per call
        for i in range(0, len(values), step):
            self.portal.call("datastore_delete", resource_id=resource_id,
                             filters={"$or": values[i : i + step]}, force=True)


def _refused(exc: Exception, words: str) -> bool:
    """Whether CKAN's refusal `exc` gives `words` as (part of) its reason."""
    return words in f"{exc} {getattr(exc, 'error_dict', '')}"


def _as_text(value: Any) -> str | None:
    """A JSON value of `datastore_search` as PostgreSQL's `::text` writes it."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def copy_csv(table: pd.DataFrame, columns: list[str]) -> bytes:
    """CSV as PostgreSQL's COPY reads it: quoted values, unquoted empty = NULL, UTC timestamps."""
    import pyarrow as pa
    from pyarrow import csv

    out = table[columns].copy()
    for name in columns:
        column = out[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            out[name] = column.dt.tz_convert("UTC").dt.tz_localize(None)
    # One chunk per column: pyarrow's CSV writer emitted NUL bytes for multi-chunk columns
    # (a frame concatenated from an empty one), which COPY rightly refuses.
    arrow = pa.Table.from_pandas(out, preserve_index=False).combine_chunks()
    sink = pa.BufferOutputStream()
    csv.write_csv(arrow, sink, csv.WriteOptions(include_header=False, quoting_style="all_valid"))
    return sink.getvalue().to_pybytes()


def csv_chunks(table: pd.DataFrame | Merged, columns: list[str], rows: int = 100_000,
               each: Callable[[pd.DataFrame], None] | None = None) -> Iterator[bytes]:
    """`copy_csv` in chunks of `rows` (a table on disk: of a row group), the next one read and
    encoded in a thread while the caller sends the current one (pyarrow releases the GIL):
    encoding overlaps PostgreSQL's parsing. `each`: called with every chunk's frame."""
    parts = frames(table, rows)

    def encode() -> bytes | None:
        frame = next(parts, None)
        if frame is None:
            return None
        if each is not None:
            each(frame)
        return copy_csv(frame, columns)

    with ThreadPoolExecutor(1) as pool:
        ahead = pool.submit(encode)
        while (chunk := ahead.result()) is not None:
            ahead = pool.submit(encode)
            yield chunk


class CopyLoader:
    name = "copy"
    reads_from_disk = True  # `load` also takes new rows on disk, a row group at a time

    def __init__(self, portal: Portal, write_url: str, progress: Progress | None = None,
                 bulk_min_rows: int = 50_000) -> None:
        self.portal, self.write_url = portal, write_url
        self.progress = progress or (lambda _msg: None)
        self.bulk_min_rows = bulk_min_rows
        self.notes: list[str] = []
        self.writes = 0
        self._long = 0  # rows of the load's chunks with text too long for a tsvector

    def read(self, resource_id: str, columns: list[str]) -> Any:
        """Every row by `COPY (SELECT …) TO STDOUT`, each value as PostgreSQL's `::text`
        writes it (NULL unquoted, every value quoted: an empty text stays an empty text)."""
        import psycopg
        from pyarrow import csv

        select = ", ".join(f"{_ident(c)}::text" for c in columns)
        sql = (f"COPY (SELECT {select} FROM {_ident(resource_id)}) TO STDOUT "
               "WITH (FORMAT csv, FORCE_QUOTE *)")
        data = bytearray()
        try:
            with self._connect() as conn, conn.cursor() as cur:
                cur.execute("SET DateStyle = ISO")
                with cur.copy(sql) as copy:
                    for chunk in copy:
                        data += chunk
        except psycopg.Error as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise PublishError(f"reading DataStore table {resource_id} failed: {detail}"
                               ) from None
        import pyarrow as pa

        if not data:
            return pa.table({c: pa.array([], type=pa.large_string()) for c in columns})
        return csv.read_csv(
            pa.py_buffer(bytes(data)),
            read_options=csv.ReadOptions(column_names=columns, block_size=1 << 24),
            parse_options=csv.ParseOptions(newlines_in_values=True),
            convert_options=csv.ConvertOptions(
                column_types={c: pa.large_string() for c in columns}, null_values=[""],
                strings_can_be_null=True, quoted_strings_can_be_null=False))

    def create(self, resource_id: str, fields: list[dict[str, Any]], key: list[str]) -> None:
        _create(self.portal, resource_id, fields, key)

    def _connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(self.write_url, connect_timeout=15, application_name="odp")
        except psycopg.OperationalError as exc:
            where = urlsplit(self.write_url).hostname
            raise PublishError(f"DataStore database at {where} refused the connection "
                               f"({type(exc).__name__})") from None

    def load(self, resource_id: str, insert: pd.DataFrame | Merged, upsert: pd.DataFrame,
             delete: pd.DataFrame, key: list[str], redo: bool = False,
             rows_before: int | None = None) -> None:
        """`insert` may be a table on disk (a first publish's, `odp.publish.ledgerfile`):
        read a row group at a time."""
        import psycopg

        if redo:
            insert, upsert = upsert.iloc[0:0], pd.concat([upsert, as_frame(insert)],
                                                         ignore_index=True)
        if not len(insert) and upsert.empty and delete.empty:
            return
        cached = self._cached_row_count(resource_id) if rows_before is not None else None
        self.portal.may_update(resource_id)  # the token's right, checked before the database
        self._long = 0
        try:
            counted = self._cache_row_count(resource_id,
                                            cached if cached == rows_before else None)
            with self._connect() as conn, conn.cursor() as cur:  # one transaction
                grown = self._write(cur, resource_id, insert, upsert, delete, key, counted)
                if counted is not None:
                    set_row_count(cur, resource_id, grown)
        except psycopg.Error as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise PublishError(f"DataStore COPY into {resource_id} failed: {detail}") from None
        self.writes += 1
        self._note_long_text()

    def _write(self, cur: Any, resource_id: str, insert: pd.DataFrame | Merged,
               upsert: pd.DataFrame, delete: pd.DataFrame, key: list[str], counted: int | None
               ) -> int | None:
        """The update inside the load's transaction: into the live table, or — a bulk load —
        into a copy of it built beside it and swapped in at the end (`Rebuild`). `counted`:
        the table's rows just before, if known. Returns by how many rows the table grew
        (None: it was rebuilt)."""
        grown = 0
        rebuild = None
        if len(insert) and self._is_bulk(cur, resource_id, len(insert), counted):
            rebuild = Rebuild.beside(cur, resource_id)
        target = rebuild.build if rebuild else resource_id
        table = _ident(target)
        if len(insert):
            cols = [c for c in column_names(insert) if c not in (HASH, KEY_HASH)]
            chunks = csv_chunks(insert, cols, each=self._count_long)
            if rebuild:
                self.progress(f"DataStore bulk COPY: {len(insert)} new rows into a copy of the "
                              "table, swapped in at the commit")
                rebuild.fill(cur, cols, chunks)
                rebuild.index(cur)
            else:
                self.progress(f"DataStore COPY: {len(insert)} new rows")
                grown += insert_with_full_text(cur, target, cols, chunks)
        if not upsert.empty:
            self.progress(f"DataStore COPY + upsert: {len(upsert)} changed rows")
            cols = [c for c in upsert.columns if c != HASH]
            grown += upsert_with_full_text(cur, target, cols, key,
                                           csv_chunks(upsert, cols, each=self._count_long))
        if not delete.empty:
            self.progress(f"DataStore delete: {len(delete)} rows")
            _copy_into_stage(cur, "odp_delete", table, key, copy_csv(delete, key))
            match = " AND ".join(f"t.{_ident(k)} = d.{_ident(k)}" for k in key)
            cur.execute(f"DELETE FROM {table} t USING odp_delete d WHERE {match}")
            grown -= cur.rowcount
        if _analyze_due(cur, table, len(insert) + len(upsert)):
            cur.execute(f"ANALYZE {table}")  # fresh planner statistics, as XLoader's load
        if rebuild:
            rebuild.swap(cur)
        return None if rebuild else grown

    def _cached_row_count(self, resource_id: str) -> int | None:
        """CKAN's cached row count of the table as it stands (None: no entry, or no cache)."""
        with self._connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass('_table_stats') IS NOT NULL")
            if not cur.fetchone()[0]:
                return None
            cur.execute("SELECT (stats ->> 'rows')::bigint FROM _table_stats "
                        "WHERE resource_id = %s", (resource_id,))
            found = cur.fetchone()
            return None if found is None or found[0] is None else int(found[0])

    def _cache_row_count(self, resource_id: str, known: int | None = None) -> int | None:
        """Make sure CKAN's cached row count of the table exists before the write, and return
        it (None: this DataStore has no such cache, CKAN < 2.11).

        CKAN ≥ 2.11 caches `datastore_search`'s `total` in `_table_stats`; a reader that
        finds no entry counts the rows and stores the count. Were the entry cleared by the
        write, a reader counting while the write commits would store the OLD count after it,
        and every reader would see that count until the next write. So the entry is made sure
        of here, and the write's transaction sets it to the new count (`set_row_count`):
        readers see the old count with the old rows and the new one with the new rows. (The
        right to write, asked of CKAN just before by a dry-run upsert, has cleared the entry.)

        `known`: the count the entry held just before the dry run, when it is the rows odp
        left in the table (the ledger's): put back instead of counting the table (10M rows:
        0.5–2.3 s of every +1 % run). No entry then, or one that disagrees with the ledger,
        and the table is counted, once per load."""
        with self._connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT to_regproc('cached_table_row_count') IS NOT NULL")
            if not cur.fetchone()[0]:
                return None
            if known is not None:  # a reader's count made meanwhile is as good: kept
                cur.execute("INSERT INTO _table_stats (resource_id, stats) VALUES "
                            "(%s, jsonb_build_object('rows', %s::bigint)) "
                            "ON CONFLICT (resource_id) DO NOTHING", (resource_id, known))
            cur.execute("SELECT cached_table_row_count(%s)", (resource_id,))
            return int(cur.fetchone()[0])

    def _count_long(self, rows: pd.DataFrame) -> None:
        """Count the rows of a chunk sent whose text may be too long for the full text."""
        columns = [c for c in rows.columns if c not in (HASH, KEY_HASH)]
        self._long += int(limits.long_text_rows(rows, columns).sum())

    def _note_long_text(self) -> None:
        long = self._long
        if long:
            self.notes.append(
                f"{long} row(s) with text too long for CKAN's full-text index (PostgreSQL's "
                f"tsvector holds at most 1 MB): stored whole; their values over "
                f"{limits.FULL_TEXT_SAFE_BYTES // 1000} kB are left out of the full-text "
                "search (datastore_search q=), filters find them as usual")

    def _is_bulk(self, cur: Any, resource_id: str, rows: int, counted: int | None) -> bool:
        """At least `bulk_min_rows` new rows, and as many as the table holds (the count just
        made for CKAN's cache, else counted: a choice of speed, the result is the same)."""
        if rows < self.bulk_min_rows:
            return False
        if counted is None:
            cur.execute(f"SELECT count(*) FROM {_ident(resource_id)}")
            counted = cur.fetchone()[0]
        return rows >= counted

    @staticmethod
    def _copy(cur: Any, table: str, columns: list[str], data: bytes | Iterable[bytes]) -> None:
        sql = f"COPY {table} ({', '.join(map(_ident, columns))}) FROM STDIN WITH (FORMAT csv)"
        chunks = [data] if isinstance(data, bytes) else data
        with cur.copy(sql) as copy:
            for chunk in chunks:
                for start in range(0, len(chunk), 1 << 20):
                    copy.write(chunk[start : start + (1 << 20)])


def _analyze_due(cur: Any, table: str, written: int) -> bool:
    """Whether a write of `written` rows should refresh the table's planner statistics: more
    than 10,000 rows that are at least a tenth of the rows the statistics know (a new or
    rebuilt table knows none). A smaller share is left to autovacuum, which analyses a table
    once a tenth of it changed (ANALYZE of a 3.6M-row table: 0.56 s of a +1 % run's 11 s)."""
    if written <= 10_000:
        return False
    cur.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (table,))
    known = cur.fetchone()[0]
    return known < 0 or written >= 0.1 * known


def _copy_into_stage(cur: Any, stage: str, like: str, columns: list[str],
                     data: bytes | Iterable[bytes]) -> None:
    """A new temporary table `stage` (dropped at commit) with `like`'s `columns`, filled by
    COPY."""
    names = ", ".join(map(_ident, columns))
    cur.execute(f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {names} FROM {like} "
                "WITH NO DATA")
    CopyLoader._copy(cur, stage, columns, data)


# Column types whose JSON rendering (CKAN's trigger: row_to_json) is their `::text` — the same
# output function — and at most `limits.NON_TEXT_BYTES` long.
PLAIN_TYPES = ("smallint", "integer", "bigint", "real", "double precision", "boolean")
# Types JSON renders otherwise than `::text` (ISO 8601 with a "T"), also of bounded length.
BOUNDED_TYPES = ("date", "timestamp without time zone", "timestamp with time zone")


def full_text_expression(cur: Any, resource_id: str) -> str:
    """CKAN's trigger expression written set-wise: the tsvector of the row's non-underscore
    values as JSON renders them, joined by spaces in column order (NULLs skipped)."""
    cur.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
                "ORDER BY attnum", (_ident(resource_id),))
    columns = [(name, kind) for name, kind in cur.fetchall() if not name.startswith("_")]
    parts = [_ident(name) if kind == "text" else f"{_ident(name)}::text"
             if kind in PLAIN_TYPES else f"(to_json({_ident(name)}) #>> '{{}}')"
             for name, kind in columns]
    joined = f"concat_ws(' ', {', '.join(parts)})"
    # A row whose text may overflow a tsvector (see odp.publish.limits) gets a reduced full
    # text instead of failing the whole write: its values over the safe size are left out and
    # the rest is cut to a length that always fits. "May overflow" is decided on an upper
    # bound of the joined text's bytes, as `limits.text_bytes` bounds it for the run's note,
    # from the text columns' lengths alone: the joined text is built once per row (measuring
    # it as well built it twice, a third of the load's full-text time at 1M rows).
    safe, kept = limits.FULL_TEXT_SAFE_BYTES, limits.FULL_TEXT_KEPT_CHARS
    bound = " + ".join(str(limits.NON_TEXT_BYTES) if kind in PLAIN_TYPES + BOUNDED_TYPES
                       else f"coalesce(octet_length({p}), 0) + 1"
                       for p, (_, kind) in zip(parts, columns, strict=True)) or "0"
    short = [f"CASE WHEN octet_length({p}) <= {safe} THEN {p} END"
             if kind not in PLAIN_TYPES + BOUNDED_TYPES else p
             for p, (_, kind) in zip(parts, columns, strict=True)]
    reduced = f"left(concat_ws(' ', {', '.join(short)}), {kept})"
    return f"to_tsvector(CASE WHEN {bound} <= {safe} THEN {joined} ELSE {reduced} END)"


def insert_with_full_text(cur: Any, resource_id: str, columns: list[str],
                          data: bytes | Iterable[bytes]) -> int:
    """Append rows with their `_full_text` computed set-wise (CKAN's trigger expression, about
    twice as fast as the trigger's row → JSON → text per row): COPY into a temporary table,
    then one INSERT … SELECT. The trigger leaves a filled `_full_text` alone. Returns the
    number of rows inserted."""
    table, names = _ident(resource_id), ", ".join(map(_ident, columns))
    _copy_into_stage(cur, "odp_insert", table, columns, data)
    cur.execute(f"INSERT INTO {table} ({names}, _full_text) SELECT {names}, "
                f"{full_text_expression(cur, resource_id)} FROM odp_insert")
    inserted = cur.rowcount
    cur.execute("DROP TABLE odp_insert")
    return inserted


def upsert_with_full_text(cur: Any, resource_id: str, columns: list[str], key: list[str],
                          data: bytes | Iterable[bytes]) -> int:
    """Insert or overwrite rows by key, `_full_text` computed set-wise as for new rows and
    overwritten with the row (CKAN's trigger keeps a filled `_full_text` on UPDATE, and on
    INSERT it would compute it row by row — and fail for a row too long for a tsvector).
    Returns the number of rows that were new (a row PostgreSQL inserted has no `xmax`; one it
    overwrote has the writing transaction's)."""
    table, names = _ident(resource_id), ", ".join(map(_ident, columns))
    _copy_into_stage(cur, "odp_upsert", table, columns, data)
    sets = ", ".join(f"{_ident(c)} = EXCLUDED.{_ident(c)}"
                     for c in [*columns, "_full_text"] if c not in key)
    cur.execute(f"WITH written AS (INSERT INTO {table} ({names}, _full_text) SELECT {names}, "
                f"{full_text_expression(cur, resource_id)} FROM odp_upsert "
                f"ON CONFLICT ({', '.join(map(_ident, key))}) DO UPDATE SET {sets} "
                "RETURNING xmax = 0 AS new) SELECT count(*) FILTER (WHERE new) FROM written")
    return cur.fetchone()[0]


def set_row_count(cur: Any, resource_id: str, grown: int | None) -> None:
    """CKAN's cached row count of the table, set inside the write's transaction (see
    `CopyLoader._cache_row_count`): moved by the rows the write added or removed — the entry
    was made sure of before the write, and every writer either sets it so (odp) or clears it
    after committing (CKAN) — or, for a rebuilt table or an entry cleared meanwhile, counted
    (10M rows: a count of the whole table in every +1 % run)."""
    if grown is not None:
        cur.execute("UPDATE _table_stats SET stats = jsonb_set(stats, '{rows}', "
                    "to_jsonb((stats ->> 'rows')::bigint + %(grown)s)) "
                    "WHERE resource_id = %(rid)s AND stats ? 'rows'",
                    {"rid": resource_id, "grown": grown})
        if cur.rowcount:
            return
    cur.execute(_RECOUNT.format(t=_ident(resource_id)), {"rid": resource_id})


_RECOUNT = ("INSERT INTO _table_stats (resource_id, stats) VALUES (%(rid)s, "
            "jsonb_build_object('rows', (SELECT count(*) FROM {t}))) "
            "ON CONFLICT (resource_id) DO UPDATE SET stats = "
            "jsonb_set(_table_stats.stats, '{{rows}}', EXCLUDED.stats -> 'rows')")
_DEPENDENTS = ("SELECT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid "
               "WHERE d.refobjid = %(t)s::regclass AND r.ev_class <> %(t)s::regclass) "
               "OR EXISTS (SELECT 1 FROM pg_constraint WHERE confrelid = %(t)s::regclass)")
_QUALIFIED = ("SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), "
              "obj_description(c.oid, 'pg_class') FROM pg_class c "
              "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %(t)s::regclass")
_CONSTRAINTS = ("SELECT quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %(t)s::regclass AND contype IN ('c', 'p', 'u', 'x') "
                "ORDER BY contype, conname")
_COLUMNS = ("SELECT quote_ident(a.attname), a.attnotnull, pg_get_expr(d.adbin, d.adrelid), "
            "col_description(a.attrelid, a.attnum), a.attstorage, t.typstorage, "
            "a.attstattarget, a.attname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
            "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "WHERE a.attrelid = %(t)s::regclass AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum")
_STORAGE = {"p": "PLAIN", "e": "EXTERNAL", "m": "MAIN", "x": "EXTENDED"}
_UNUSUAL = ("SELECT EXISTS (SELECT 1 FROM pg_statistic_ext WHERE stxrelid = %(t)s::regclass) "
            "OR EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = %(t)s::regclass "
            "AND attnum > 0 AND (attidentity <> '' OR attgenerated <> ''))")
_INDEXES = ("SELECT quote_ident(c.relname), pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %(t)s::regclass "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) "
            "ORDER BY i.indexrelid")
_TRIGGERS = ("SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = %(t)s::regclass "
             "AND NOT tgisinternal ORDER BY tgname")
_GRANTS = ("SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END, "
           "a.privilege_type FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a "
           "LEFT JOIN pg_roles r ON r.oid = a.grantee "
           "WHERE c.oid = %(t)s::regclass AND a.grantee <> c.relowner")
_SEQUENCES = ("SELECT d.objid::regclass::text, quote_ident(a.attname) FROM pg_depend d "
              "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
              "JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
              "WHERE d.refobjid = %(t)s::regclass AND d.deptype IN ('a', 'i')")


@dataclass
class Rebuild:
    """A bulk load builds the new table BESIDE the live one and swaps it in, all in the load's
    one transaction: readers go on reading the live table while the rows are copied, loaded,
    indexed and analysed (`LOCK … IN EXCLUSIVE MODE` holds off other writers, not readers);
    only the swap at the end — two renames and a drop — takes the lock readers wait for, for
    milliseconds. The new table keeps everything CKAN made: the name (the resource id), each
    row's `_id` and its sequence, column types, defaults, NOT NULL, storage and statistics
    targets, the data dictionary (column comments), the table's comment, the key and check
    constraints and indexes under their own names, the full-text trigger and the read grants.
    A failure or a kill rolls it all back: the live table is untouched. A table other objects
    depend on (a view such as a DataStore alias, a foreign key) or with definitions this does
    not rebuild (extended statistics, identity or generated columns) is not rebuilt: its rows
    go in the plain way, row locks only."""

    live: str  # the resource id
    build: str
    columns: list[str]  # the live table's columns, in order
    definitions: list[str]  # column definitions and comments, on the build table
    constraints: list[tuple[str, str]]  # (name, definition)
    indexes: list[tuple[str, str]]  # (name, CREATE INDEX statement on the build table)
    triggers: list[str]
    grants: list[tuple[str, str]]  # (grantee, privilege)
    sequences: list[tuple[str, str]]  # (sequence, column)

    @classmethod
    def beside(cls, cur: Any, resource_id: str) -> Rebuild | None:
        """The live table's definitions, rewritten for a build table of a new name; None if
        the table cannot be swapped (other objects depend on it, or PostgreSQL writes its
        definitions otherwise than expected)."""
        import secrets

        from psycopg import sql

        table, args = _ident(resource_id), {"t": _ident(resource_id)}
        cur.execute(_DEPENDENTS, args)
        if cur.fetchone()[0]:
            return None
        cur.execute(_UNUSUAL, args)
        if cur.fetchone()[0]:
            return None
        cur.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")  # writers wait, readers read on
        cur.execute(_QUALIFIED, args)
        qualified, comment = cur.fetchone()
        build = f"odp_stage_{secrets.token_hex(6)}"
        on_live, on_build = f" ON {qualified} ", f" ON {build} "
        cur.execute(_INDEXES, args)
        indexes = [(name, statement.replace(f"INDEX {name}{on_live}",
                                            f"INDEX {build}_i{n}{on_build}", 1))
                   for n, (name, statement) in enumerate(cur.fetchall())]
        cur.execute(_TRIGGERS, args)
        triggers = [statement.replace(on_live, on_build, 1) for (statement,) in cur.fetchall()]
        if any(build not in statement for _, statement in indexes) or any(
                build not in statement for statement in triggers):
            return None
        cur.execute(_COLUMNS, args)
        described = cur.fetchall()

        def literal(text: str) -> str:  # COMMENT takes no query parameters
            return sql.Literal(text).as_string(cur.connection)

        definitions = _column_definitions(build, described, literal)
        if comment is not None:
            definitions.append(f"COMMENT ON TABLE {build} IS {literal(comment)}")
        cur.execute(_CONSTRAINTS, args)
        constraints = cur.fetchall()
        cur.execute(_GRANTS, args)
        grants = cur.fetchall()
        cur.execute(_SEQUENCES, args)
        sequences = cur.fetchall()
        return cls(resource_id, build, [row[-1] for row in described], definitions,
                   constraints, indexes, triggers, grants, sequences)

    def fill(self, cur: Any, columns: list[str], data: bytes | Iterable[bytes]) -> None:
        """Create the build table with the live rows and the new ones, as XLoader loads: the
        new rows COPYed into an unlogged staging table (each row's `_id` from the live table's
        sequence, as an insert would take it), then ONE `CREATE TABLE … AS SELECT` of the
        live rows and the staged ones with `_full_text` computed set-wise by the trigger's own
        expression — PostgreSQL spreads that over parallel workers — and the rows written once
        (1M rows: an index-less copy of the table filled by INSERT after it had cost 1.8–2.7 s
        more). The trigger leaves a filled `_full_text` alone."""
        live = _ident(self.live)
        full_text = full_text_expression(cur, self.live)
        stage = f"{self.build}_new"  # unlogged, not temporary: parallel workers scan it
        cur.execute(f"CREATE UNLOGGED TABLE {stage} (LIKE {live} INCLUDING DEFAULTS)")
        CopyLoader._copy(cur, stage, columns, data)
        old = ", ".join(map(_ident, self.columns))
        new = ", ".join(f"{full_text} AS _full_text" if name == "_full_text" else _ident(name)
                        for name in self.columns)
        # Computing the rows is the point here: let the planner use parallel workers.
        cur.execute("SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0")
        cur.execute(f"CREATE TABLE {self.build} AS SELECT {old} FROM {live} "
                    f"UNION ALL SELECT {new} FROM {stage}")  # _id and _full_text of live kept
        cur.execute("RESET parallel_setup_cost; RESET parallel_tuple_cost")
        cur.execute(f"DROP TABLE {stage}")

    def index(self, cur: Any) -> None:
        """Column definitions, keys, indexes, triggers and grants on the filled build table
        (names of its own until the swap)."""
        for statement in self.definitions:
            cur.execute(statement)
        # Index builds sort in memory: 256MB holds the btree sorts of 1M rows (a GIN build
        # of their full text took the same CPU time from 64MB to 2GB: 4.1-4.6 s).
        cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
        # At least PostgreSQL's default of 2, in case the server was set lower: CKAN's btree
        # indexes build with two workers beside the leader (1M rows, busy 2 cores: 0.82 → 0.55 s
        # for the `_id` key, 2.0 → 1.1 s for a two-column key). A GIN build has none before
        # PostgreSQL 18, which takes the setting too.
        cur.execute("SELECT set_config('max_parallel_maintenance_workers', greatest(2, "
                    "current_setting('max_parallel_maintenance_workers')::int)::text, true)")
        for n, (_, definition) in enumerate(self.constraints):
            cur.execute(f"ALTER TABLE {self.build} ADD CONSTRAINT {self.build}_c{n} {definition}")
        for _, statement in self.indexes:
            cur.execute(statement)
        for statement in self.triggers:
            cur.execute(statement)
        for grantee, privilege in self.grants:
            cur.execute(f"GRANT {privilege} ON {self.build} TO {grantee}")

    def swap(self, cur: Any) -> None:
        """The build table takes the live one's place and names (readers wait only here)."""
        table = _ident(self.live)
        for sequence, column in self.sequences:
            cur.execute(f"ALTER SEQUENCE {sequence} OWNED BY {self.build}.{column}")
        cur.execute(f"ALTER TABLE {table} RENAME TO {self.build}_old")
        cur.execute(f"ALTER TABLE {self.build} RENAME TO {table}")
        cur.execute(f"DROP TABLE {self.build}_old")
        for n, (name, _) in enumerate(self.constraints):
            cur.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {self.build}_c{n} TO {name}")
        for n, (name, _) in enumerate(self.indexes):
            cur.execute(f"ALTER INDEX {self.build}_i{n} RENAME TO {name}")


def _column_definitions(build: str, described: list[tuple[Any, ...]],
                        literal: Callable[[str], str]) -> list[str]:
    """What `CREATE TABLE … (LIKE live INCLUDING DEFAULTS INCLUDING STORAGE …)` would copy,
    as statements on a build table made by `CREATE TABLE … AS`: defaults, NOT NULL (one
    statement, one scan), storage and statistics targets that differ from the default, and
    the column comments CKAN keeps its data dictionary in."""
    statements = []
    not_null = []
    for name, notnull, default, comment, storage, type_storage, target, _ in described:
        if default is not None:
            statements.append(f"ALTER TABLE {build} ALTER COLUMN {name} SET DEFAULT {default}")
        if notnull:
            not_null.append(f"ALTER COLUMN {name} SET NOT NULL")
        if storage != type_storage:
            statements.append(f"ALTER TABLE {build} ALTER COLUMN {name} SET STORAGE "
                              f"{_STORAGE[storage]}")
        if target is not None and target >= 0:
            statements.append(f"ALTER TABLE {build} ALTER COLUMN {name} SET STATISTICS "
                              f"{int(target)}")
        if comment is not None:
            statements.append(f"COMMENT ON COLUMN {build}.{name} IS {literal(comment)}")
    if not_null:
        statements.append(f"ALTER TABLE {build} {', '.join(not_null)}")
    return statements


def write_url(city: City) -> str | None:
    """The DataStore's write database (a libpq URL or key=value string), checked for its
    transport: to another machine only with TLS (`check_write_transport`)."""
    found = None
    if url := os.environ.get(WRITE_URL_ENV):
        found = url, WRITE_URL_ENV
    elif (env := city.portal.get("datastore_write_url_env")) and (url := os.environ.get(env)):
        found = url, str(env)
    elif (city.write_url_file is not None and city.write_url_file.is_file()
          and (url := city.write_url_file.read_text().strip())):
        found = url, str(city.write_url_file)
    if found is None:
        return None
    check_write_transport(*found)
    return found[0]


STRONG_SSLMODES = ("require", "verify-ca", "verify-full")  # libpq: encrypted (and verified)


def check_write_transport(url: str, origin: str) -> None:
    """ConfigError unless the database is on this machine (a loopback address or a local socket)
    or the connection is encrypted: `sslmode=require` or stronger, in the URL or in PGSSLMODE.
    libpq's default (`prefer`) falls back to plain text, and the database password and every
    row would cross the network readable. The message never shows the URL (it has the
    password), only its host."""
    from psycopg.conninfo import conninfo_to_dict

    from odp.errors import ConfigError
    from odp.hosts import on_this_machine

    try:
        params = conninfo_to_dict(url)
    except Exception:  # noqa: BLE001 — psycopg's message would echo the URL
        raise ConfigError(f"DataStore write URL from {origin}: not a PostgreSQL connection URL "
                          "(postgresql://user:password@host:port/db?sslmode=require)") from None
    hosts = str(params.get("hostaddr") or params.get("host") or os.environ.get("PGHOST", ""))
    sslmode = str(params.get("sslmode") or os.environ.get("PGSSLMODE", "prefer"))
    if sslmode in STRONG_SSLMODES:
        return
    for host in filter(None, hosts.split(",")):
        if host.startswith(("/", "@")) or on_this_machine(host):  # a local socket, loopback
            continue
        raise ConfigError(f"DataStore write URL from {origin}: the database at {host} is "
                          f"reached with sslmode={sslmode}, so its password and rows can travel "
                          "unencrypted; add sslmode=require (or verify-ca / verify-full) to it, "
                          "or leave it unset to write through the action API")


def check_before_writes(city: City) -> None:
    """The write database's transport checked before a run writes anything to the portal
    (`write_url` raises); nothing to check when the action API is asked for."""
    if os.environ.get(LOAD_ENV, city.portal.get("datastore_load", "auto")) != "api":
        write_url(city)


def choose(portal: Portal, city: City, progress: Progress | None = None) -> Loader:
    """COPY when the write database is known (unless ODP_DATASTORE_LOAD=api), else the API."""
    mode = os.environ.get(LOAD_ENV, city.portal.get("datastore_load", "auto"))
    if mode not in ("api", "copy", "auto"):
        raise PublishError(f"{LOAD_ENV}={mode}: use api, copy or auto")
    url = write_url(city) if mode != "api" else None
    if mode == "copy" and not url:
        raise PublishError(f"{LOAD_ENV}=copy but no DataStore write URL: set {WRITE_URL_ENV}")
    if url:
        return CopyLoader(portal, url, progress)
    return ApiLoader(portal, progress=progress)
