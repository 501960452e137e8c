"""Zip archives built byte by byte, for tests of bounded unpacking: a real deflate stream that
unpacks to `unpacked` bytes (a "zip bomb") without ever holding more than one chunk in memory,
and archives whose headers lie about a member's size.

The deflate stream is one compressed chunk repeated: after a full flush the compressor starts
afresh, so every repetition of the same input chunk compresses to the same bytes, and their
concatenation (plus a final empty block) is a valid stream of the whole.
"""

from __future__ import annotations

import struct
import zlib

MIB = 1 << 20
GIB = 1 << 30
# A DWD hourly product's header; the rest of the bomb is blanks (DWD pads its fields with blanks),
# which deflate squeezes about 1000:1 — the most it can.
PRODUCT_HEADER = b"STATIONS_ID;MESS_DATUM;  QN_8;  R1;RS_IND;WRTR;eor\r\n"
BLANKS = b" " * MIB


def _deflated(pieces: list[tuple[bytes, int]]) -> tuple[bytes, int, int]:
    """(raw deflate stream, CRC-32, size) of each chunk × its times, computed chunk by chunk."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    stream: list[bytes] = []
    crc = size = 0
    for chunk, times in pieces:
        piece = squeeze.compress(chunk) + squeeze.flush(zlib.Z_FULL_FLUSH)
        stream.append(piece * times)
        for _ in range(times):
            crc = zlib.crc32(chunk, crc)
        size += len(chunk) * times
    stream.append(squeeze.flush(zlib.Z_FINISH))
    return b"".join(stream), crc, size


def _zip(name: str, method: int, data: bytes, crc: int, declared: int) -> bytes:
    encoded = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x5821, crc, len(data),
                        declared, len(encoded), 0) + encoded
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x5821, crc,
                          len(data), declared, len(encoded), 0, 0, 0, 0, 0, 0) + encoded
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central),
                      len(local) + len(data), 0)
    return local + data + central + end


def zip_bomb(unpacked: int = GIB, name: str = "produkt_rr_stunde_20241119_20241122_01048.txt",
             declared: int | None = None) -> bytes:
    """A zip with one deflated member: a product header, then blanks up to about `unpacked`
    bytes (whole MiB); its headers declare `declared` bytes (default: the truth)."""
    stream, crc, size = _deflated([(PRODUCT_HEADER, 1), (BLANKS, max(1, unpacked // MIB))])
    return _zip(name, 8, stream, crc, size if declared is None else declared)


def stored_zip(name: str, data: bytes, method: int = 0) -> bytes:
    """A zip with one member stored as given (method 0), or labelled with another method."""
    return _zip(name, method, data, zlib.crc32(data), len(data))
