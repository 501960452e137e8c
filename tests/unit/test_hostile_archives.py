"""Archives are unpacked within limits: a 1 MB DWD zip that unpacks to 1 GiB is refused from its
headers in milliseconds with a few MB of memory, a zip whose headers lie is stopped while it is
read, and an XLSX workbook is a zip held to the same limits."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from odp.errors import ConfigError, SourceError
from odp.sources.archives import ArchiveLimits, open_zip, read_member
from odp.sources.dwd_cdc import read_archive
from odp.sources.tabular import TableLayout, read_table
from tests.corpus.bombs import GIB, MIB, stored_zip, zip_bomb

WHERE = "precipitation-dresden-hourly: https://opendata.dwd.de/x/stundenwerte_RR_01048_akt.zip"
PRODUCT = "produkt_rr_stunde_20241119_20241122_01048.txt"


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return zip_bomb(GIB)


def test_a_1_mb_zip_unpacking_to_1_gib_fails_fast_with_little_memory_and_the_figures(bomb):
    assert len(bomb) < 1.1 * MIB
    tracemalloc.start()
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        read_archive(bomb, WHERE)
    seconds = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{WHERE}: {PRODUCT}: unpacks to more than {128 * MIB} bytes "
                              "(max_unpacked_bytes; 1073741876 bytes from ")
    assert message.endswith("refused as a possible zip bomb")
    assert seconds < 1.0 and peak < 8 * MIB, (seconds, peak)


def test_the_ratio_is_refused_when_the_size_is_allowed(bomb):
    roomy = ArchiveLimits(max_unpacked_bytes=2 * GIB)
    with pytest.raises(SourceError, match=r": produkt_\S+: has a compression ratio of 1010:1 "
                       r"\(1073741876 bytes from \d+; max_ratio 100\): refused"):
        read_archive(bomb, WHERE, roomy)


def test_a_member_whose_header_understates_its_size_is_stopped_as_corrupt():
    lying = zip_bomb(64 * MIB, declared=10_000)  # looks like 10 kB, holds 64 MiB
    tracemalloc.start()
    with pytest.raises(SourceError, match=rf"{PRODUCT}: corrupt member \(Bad CRC-32"):
        read_archive(lying, WHERE)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 8 * MIB


def test_reading_counts_what_it_unpacks_even_past_a_lying_header():
    """The second line of defence: were zipfile ever to unpack past a member's declared size,
    the counting while reading stops at the limit (here the header is altered after the check,
    as a reader trusting the stream would see it)."""
    lying = zip_bomb(64 * MIB, declared=10_000)
    limits = ArchiveLimits(max_unpacked_bytes=8 * MIB, max_ratio=1e6)
    archive = open_zip(lying, limits, WHERE)
    info = archive.getinfo(PRODUCT)
    info.file_size = 64 * MIB + 100  # what the stream really holds
    tracemalloc.start()
    with pytest.raises(SourceError, match=rf"{PRODUCT}: unpacks to more than {8 * MIB} bytes"):
        read_member(archive, PRODUCT, limits, WHERE)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 16 * MIB


def test_the_real_dwd_recordings_pass_the_default_limits():
    from tests.helpers import RECORDINGS

    for path in sorted((RECORDINGS / "dwd").glob("*.zip")):
        frame, _ = read_archive(path.read_bytes(), str(path))
        assert len(frame) > 0


def test_a_member_compressed_with_bzip2_is_refused_by_method():
    archive = stored_zip(PRODUCT, b"STATIONS_ID;MESS_DATUM;eor\n", method=12)
    with pytest.raises(SourceError, match=rf"{PRODUCT}: compression method 12 is not accepted"):
        read_archive(archive, WHERE)


def test_an_xlsx_bomb_is_refused_before_openpyxl_reads_it():
    with pytest.raises(SourceError, match=r"register.xlsx: xl/worksheets/sheet1.xml: unpacks "
                       r"to more than 134217728 bytes"):
        read_table(zip_bomb(GIB, name="xl/worksheets/sheet1.xml"), TableLayout(format="xlsx"),
                   "register: register.xlsx")


def test_the_limits_are_set_per_source_and_checked():
    assert ArchiveLimits.from_source({"max_unpacked_bytes": 1000, "max_ratio": 5}) == \
        ArchiveLimits(1000, 5.0)
    with pytest.raises(ConfigError, match=r"x.toml: \[source\] max_ratio: must be a number > 0 "
                       r"\(got 'ten'\)"):
        ArchiveLimits.from_source({"max_ratio": "ten"}, "x.toml: [source]")
    tight = ArchiveLimits(max_unpacked_bytes=2 * MIB)
    with pytest.raises(SourceError, match=r"unpacks to more than 2097152 bytes"):
        read_archive(zip_bomb(4 * MIB), WHERE, tight)
