"""A CSV file read in parts: Arrow parses it block by block, each part (shaped by the caller)
goes to a spool file on the state disk, and only then are the parts handed on, one at a time.

A first delivery of 10M rows (785 MB) was held whole as bytes, as Arrow's table of its cells, as
a DataFrame, shaped and converted again for dlt: the extract's peak was 4.1 GB. Parsed in parts,
the parts on disk, the extract holds one part and its output (see bench/end_to_end.py).

Nothing is handed on before the whole file parsed: a part that fails (a ragged row, a byte that
is not UTF-8, a header Arrow types by inference) gives `None`, and the caller reads the file
whole as before, which names the line or byte at fault. So a delivery is staged entirely or
not at all, and its messages are those of the whole read.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

if TYPE_CHECKING:
    import pyarrow as pa

T = TypeVar("T")

# Arrow parses 1 MB of the file at a time: its reader keeps some 45 times a block in flight
# (10M rows, 785 MB: 1 MB blocks 0.05 GB of Arrow's memory, 4 MB 0.18 GB, 16 MB 0.7 GB, in the
# same 1.45 s). The blocks are handed on in parts of 16 MB of cells (about 200k rows of 80
# bytes): each part pays the shaping's and dlt's fixed cost once.
BLOCK = 1 << 20
PART = 16 << 20
SPOOL = "odp-spool"  # the folder (in dlt's working folder) the parts wait in


class NotStreamable(Exception):
    """The file is read whole instead (its reading names what is wrong)."""


class Hashed(io.RawIOBase):
    """The first `size` bytes of `stream` as they are read, added to `digest` on the way: the
    digest is of exactly the bytes parsed, even when the file changes meanwhile."""

    def __init__(self, stream: BinaryIO, digest: Any, size: int) -> None:
        super().__init__()
        self._stream, self._digest, self.left = stream, digest, size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")[:self.left]
        done = self._stream.readinto(view) or 0
        self._digest.update(view[:done])  # hashlib leaves the interpreter free for large blocks
        self.left -= done
        return done


@dataclass(frozen=True)
class Spool:
    """A delivery's parts on disk, given back one at a time (each read when it is asked for:
    mapped into memory, the file's pages would stay in the process's resident size)."""

    path: Path
    rows: int

    def tables(self) -> Iterator[pa.Table]:
        import pyarrow as pa

        with pa.OSFile(str(self.path)) as source:
            reader = pa.ipc.open_file(source)
            for i in range(reader.num_record_batches):
                yield pa.Table.from_batches([reader.get_batch(i)])

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def cells(stream: BinaryIO, first_line: bytes, delimiter: str, quotechar: str
          ) -> Iterator[pa.Table]:
    """The file's cells as text, block by block (columns f0, f1, …; an empty cell is null, a
    blank line skipped). The header, if any, is the first part's first row. Raises
    NotStreamable when the first line does not give every column its text type (a quoted cell
    spans lines there); Arrow's own error (ArrowInvalid) when a later part does not parse."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if len(delimiter) != 1 or len(quotechar) != 1 or not first_line.strip():
        raise NotStreamable("a delimiter or quote of more than one character, or no first line")
    width = first_line.count(delimiter.encode()) + 1
    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(autogenerate_column_names=True, block_size=BLOCK),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char=quotechar,
                                         newlines_in_values=True, ignore_empty_lines=True),
        convert_options=pacsv.ConvertOptions(
            column_types={f"f{i}": pa.string() for i in range(width)}, null_values=[""],
            strings_can_be_null=True, quoted_strings_can_be_null=True))
    if not all(pa.types.is_string(t) for t in reader.schema.types):
        raise NotStreamable("the first record spans lines")
    yield from gathered(reader, lambda batches: pa.Table.from_batches(batches).combine_chunks(),
                        size=PART)


def gathered(batches: Iterable[pa.RecordBatch], combine: Callable[[list[pa.RecordBatch]], T],
             rows: int | None = None, size: int | None = None) -> Iterator[T]:
    """`combine` of consecutive batches, gathered until they hold `rows` rows or `size` bytes
    (the last: what is left). The batches are let go before their part is handed on, not kept
    while the caller works on it (500,000 rows of staging: 0.12 GB)."""
    kept: list[pa.RecordBatch] = []
    count = held = 0
    for batch in batches:
        kept.append(batch)
        count, held = count + batch.num_rows, held + batch.nbytes
        if (rows is not None and count >= rows) or (size is not None and held >= size):
            part = combine(kept)
            kept, count, held = [], 0, 0
            del batch
            yield part
            del part
    if kept:
        yield combine(kept)


def spool(parts: Iterator[pa.Table], folder: Path) -> Spool:
    """Write the parts to one Arrow file in `folder` (emptied first: a killed run's spool goes),
    each part with the first one's columns as text."""
    import pyarrow as pa

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    path, rows = folder / "delivery.arrow", 0
    writer = None
    try:
        for part in parts:
            if writer is None:
                schema = pa.schema([pa.field(n, pa.string()) for n in part.column_names])
                writer = pa.ipc.new_file(str(path), schema)
            writer.write_table(part.cast(schema))
            rows += part.num_rows
    except BaseException:
        if writer is not None:
            writer.close()
        path.unlink(missing_ok=True)
        raise
    if writer is None:
        raise NotStreamable("no rows")
    writer.close()
    return Spool(path, rows)


def with_header(parts: Iterator[pa.Table], names: list[str] | None,
                shaped: Callable[[pa.Table], pa.Table]) -> Iterator[pa.Table]:
    """The parts with their columns named — by the first row (`names` None: the header, names
    stripped of spaces) or by `names` — and shaped. A header with an empty or a repeated name,
    or names for another number of columns, is NotStreamable (the whole read says why)."""
    for part in parts:
        if names is None:
            header = [str(v).strip() if v is not None else "" for v in
                      part.slice(0, 1).to_pylist()[0].values()] if part.num_rows else []
            if not header or not all(header) or len(set(header)) != len(header):
                raise NotStreamable("an unnamed or repeated column in the header")
            names, part = header, part.slice(1)
        if len(names) != part.num_columns:
            raise NotStreamable("the names are not one per column")
        yield shaped(part.rename_columns(names))
