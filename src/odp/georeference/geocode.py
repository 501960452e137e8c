"""Address geocoding against the city's address register, and the reverse direction.

    register = AddressRegister.from_csv(path)          # or .from_features(GeoJSON / OGC API)
    found = register.geocode(streets, numbers)          # longitude, latitude, geocode_quality, …
    near = register.reverse(longitudes, latitudes)      # nearest_address, nearest_address_m

Street names are compared after normalising (case, umlauts and ß, Str./Straße/strasse, "Dr.-",
hyphens and whitespace); house numbers keep their suffix (12a = 12 A) and ranges (12-14) cover
each number. Each row gets a quality: `exact` (same text as the register), `normalised` (same
after normalising), `street-only` (the street exists, the house does not: no coordinate) or
`none`. A coordinate is only ever copied from the register, never interpolated or guessed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from odp.errors import ConfigError
from odp.georeference.crs import WGS84, transform

QUALITIES = ("exact", "normalised", "street-only", "none")

_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", "è": "e"})
_STREET_SUFFIX = re.compile(r"(str|strasse|strase)\.?(?=$|[\s\-/,])")
_TITLES = {"doktor": "dr", "professor": "prof", "sankt": "st"}
_TITLE = re.compile(r"\b(doktor|professor|sankt)\b")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_NUMBER = re.compile(
    r"^\s*(?P<first>\d+)\s*(?P<suffix>[a-z])?\s*(?:[-–/]\s*(?P<last>\d+)\s*(?P<suffix2>[a-z])?)?\s*$",
    re.IGNORECASE,
)
_SPLIT = re.compile(r"^(?P<street>.*?[^\d\s])[\s,]*(?P<number>\d+\s*[a-zA-Z]?"
                    r"(?:\s*[-–/]\s*\d+\s*[a-zA-Z]?)?)\s*$")


def normalise_street(name: str | None) -> str:
    """A comparison key: 'Dr.-Külz-Ring' = 'dr kuelz ring' → 'drkuelzring';
    'Kötschenbroder Str.' = 'Kötschenbroder Straße' → 'koetschenbroderstrasse'."""
    if not name:
        return ""
    text = unicodedata.normalize("NFC", str(name)).strip().lower().translate(_UMLAUTS)
    text = _TITLE.sub(lambda m: _TITLES[m.group(1)], text)
    text = _STREET_SUFFIX.sub("strasse", text)
    return _NOT_ALNUM.sub("", text)


def normalise_number(number: str | None) -> str:
    """'12 A' → '12a', '12 - 14' → '12-14', '' → ''; text that is no house number stays as
    lower-case text without spaces."""
    if number is None or (isinstance(number, float) and np.isnan(number)):
        return ""
    text = str(number).strip()
    match = _NUMBER.match(text)
    if not match:
        return re.sub(r"\s+", "", text.lower())
    out = match["first"] + (match["suffix"] or "").lower()
    if match["last"]:
        out += "-" + match["last"] + (match["suffix2"] or "").lower()
    return out


def numbers_covered(number: str) -> list[str]:
    """The single numbers a register entry stands for: '1-3' → ['1-3', '1', '2', '3']."""
    match = _NUMBER.match(number)
    if not match or not match["last"] or match["suffix"] or match["suffix2"]:
        return [number]
    first, last = int(match["first"]), int(match["last"])
    if not 0 < last - first <= 20:
        return [number]
    return [number, *(str(n) for n in range(first, last + 1))]


def split_address(text: str | None) -> tuple[str, str]:
    """'Prager Straße 8 - 10' → ('Prager Straße', '8-10'); 'Terrassenufer' → ('Terrassenufer',
    '')."""
    if not text:
        return "", ""
    clean = " ".join(str(text).split())
    match = _SPLIT.match(clean)
    if not match:
        return clean, ""
    return match["street"].strip(" ,"), normalise_number(match["number"])


@dataclass(frozen=True)
class Entry:
    street: str
    number: str
    postcode: str
    lon: float
    lat: float

    @property
    def text(self) -> str:
        return f"{self.street} {self.number}".strip()


class AddressRegister:
    """House coordinates (WGS84) keyed by normalised street + house number."""

    def __init__(self, entries: Iterable[Entry], city_crs: str = "EPSG:25833") -> None:
        self.entries = [e for e in entries if np.isfinite(e.lon) and np.isfinite(e.lat)]
        self.city_crs = city_crs
        self._exact: dict[str, list[int]] = {}
        self._houses: dict[tuple[str, str], list[int]] = {}
        self._streets: set[str] = set()
        for i, entry in enumerate(self.entries):
            street_key = normalise_street(entry.street)
            self._streets.add(street_key)
            self._exact.setdefault(_exact_key(entry.street, entry.number), []).append(i)
            for number in numbers_covered(normalise_number(entry.number)):
                self._houses.setdefault((street_key, number), []).append(i)
        self._tree: Any = None

    def __len__(self) -> int:
        return len(self.entries)

    # --- loading ----------------------------------------------------------------------------

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, fields: dict[str, str] | None = None,
                   city_crs: str = "EPSG:25833") -> AddressRegister:
        """Rows with street, housenumber (+ suffix) or one `address` column, postcode, WGS84
        lon/lat; `fields` maps these names to the frame's columns (checked by the caller:
        odp.georeference.register.check_fields)."""
        f = {"street": "street", "housenumber": "housenumber", "suffix": "suffix",
             "postcode": "postcode", "address": "address", "longitude": "longitude",
             "latitude": "latitude", **(fields or {})}
        for needed in ([f["street"]] if f["street"] in frame else [f["address"]]) + [
                f["longitude"], f["latitude"]]:
            if needed not in frame:
                raise ConfigError(f"address register: no column '{needed}' (columns: "
                                  f"{', '.join(map(str, frame.columns))})")
        blank = pd.Series("", index=frame.index)
        if f["street"] in frame and "address" not in (fields or {}):
            streets = frame[f["street"]].fillna("").astype(str)
            numbers = (frame[f["housenumber"]].fillna("").astype(str) if f["housenumber"] in frame
                       else blank)
            if f["suffix"] in frame:  # 12 + "a" → "12a"
                suffix = frame[f["suffix"]].fillna("").astype(str).str.strip()
                numbers = numbers.str.strip() + suffix
        else:
            pairs = [split_address(a) for a in frame[f["address"]].fillna("").astype(str)]
            streets = pd.Series([p[0] for p in pairs], index=frame.index)
            numbers = pd.Series([p[1] for p in pairs], index=frame.index)
        postcodes = (frame[f["postcode"]].fillna("").astype(str) if f["postcode"] in frame
                     else pd.Series("", index=frame.index))
        lon = pd.to_numeric(frame[f["longitude"]], errors="coerce").to_numpy(dtype=float)
        lat = pd.to_numeric(frame[f["latitude"]], errors="coerce").to_numpy(dtype=float)
        entries = (Entry(s, n, p, x, y) for s, n, p, x, y in
                   zip(streets, numbers, postcodes, lon, lat, strict=True))
        return cls(entries, city_crs)

    @classmethod
    def from_csv(cls, path: Path, fields: dict[str, str] | None = None,
                 city_crs: str = "EPSG:25833") -> AddressRegister:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, sep=None, engine="python")
        return cls.from_frame(frame, fields, city_crs)

    @classmethod
    def from_features(cls, data: bytes, fields: dict[str, str] | None = None,
                      city_crs: str = "EPSG:25833") -> AddressRegister:
        """An OGC API Features items response / GeoJSON of house points (any accepted CRS)."""
        from odp.georeference.geometry import read_features

        features = read_features(data)
        points = features.geometry.representative_point()
        frame = pd.DataFrame(features.drop(columns="geometry"))
        frame["longitude"], frame["latitude"] = points.x.to_numpy(), points.y.to_numpy()
        return cls.from_frame(frame, {**(fields or {}), "longitude": "longitude",
                                      "latitude": "latitude"}, city_crs)

    # --- geocoding --------------------------------------------------------------------------

    def lookup(self, street: str, number: str = "", postcode: str = "") -> tuple[str, int | None]:
        """(quality, entry index) for one address; `number` empty → taken from `street`."""
        candidates = self._exact.get(_exact_key(street, number))
        if not number:
            street, number = split_address(street)
        quality = "exact"
        if not candidates:
            quality = "normalised"
            candidates = self._houses.get((normalise_street(street), normalise_number(number)))
        if not candidates:
            return ("street-only" if normalise_street(street) in self._streets else "none"), None
        chosen = self._pick(candidates, postcode)
        return (quality, chosen) if chosen is not None else ("none", None)

    def _pick(self, candidates: list[int], postcode: str) -> int | None:
        """One entry; the same street in two Ortsteile must be told apart by the postcode."""
        if postcode:
            same = [i for i in candidates if self.entries[i].postcode in ("", postcode)]
            candidates = same or []
        places = {(round(self.entries[i].lon, 5), round(self.entries[i].lat, 5))
                  for i in candidates}
        return candidates[0] if len(places) == 1 else None

    def geocode(self, streets: pd.Series, numbers: pd.Series | None = None,
                postcodes: pd.Series | None = None) -> pd.DataFrame:
        """Per row: longitude, latitude (null unless found), geocode_quality, matched_address.
        Repeated addresses are looked up once."""
        blank = pd.Series("", index=streets.index)
        keys = pd.DataFrame({
            "s": streets.fillna("").astype(str),
            "n": (numbers if numbers is not None else blank).fillna("").astype(str),
            "p": (postcodes if postcodes is not None else blank).fillna("").astype(str),
        })
        codes, uniques = pd.factorize(pd.MultiIndex.from_frame(keys))
        found = [self.lookup(s, n, p) for s, n, p in uniques]
        index = np.array([-1 if i is None else i for _, i in found], dtype=np.int64)[codes]
        lon = np.array([e.lon for e in self.entries] + [np.nan])[index]
        lat = np.array([e.lat for e in self.entries] + [np.nan])[index]
        text = np.array([e.text for e in self.entries] + [None], dtype=object)[index]
        quality = np.array([q for q, _ in found], dtype=object)[codes]
        return pd.DataFrame({
            "longitude": pd.array(lon, dtype="Float64"),
            "latitude": pd.array(lat, dtype="Float64"),
            "geocode_quality": pd.array(quality, dtype="string"),
            "matched_address": pd.array(text, dtype="string"),
        }, index=streets.index)

    # --- reverse ----------------------------------------------------------------------------

    def reverse(self, lon: pd.Series, lat: pd.Series, max_distance_m: float = 250.0
                ) -> pd.DataFrame:
        """Per row: the nearest register address within `max_distance_m` and its distance."""
        import shapely

        if self._tree is None:
            ex, ny = transform([e.lon for e in self.entries], [e.lat for e in self.entries],
                               WGS84, self.city_crs)
            self._tree = shapely.STRtree(shapely.points(ex, ny))
        x, y = transform(lon.astype("Float64").to_numpy(dtype=float, na_value=np.nan),
                         lat.astype("Float64").to_numpy(dtype=float, na_value=np.nan),
                         WGS84, self.city_crs)
        ok = np.isfinite(x) & np.isfinite(y)
        address = np.full(len(lon), None, dtype=object)
        distance = np.full(len(lon), np.nan)
        if ok.any() and len(self.entries):
            (query, hit), dist = self._tree.query_nearest(
                shapely.points(x[ok], y[ok]), max_distance=max_distance_m, return_distance=True,
                all_matches=False)
            rows = np.flatnonzero(ok)[query]
            address[rows] = [self.entries[i].text for i in hit]
            distance[rows] = np.round(dist, 1)
        return pd.DataFrame({
            "nearest_address": pd.array(address, dtype="string"),
            "nearest_address_m": pd.array(distance, dtype="Float64"),
        }, index=lon.index)


def _exact_key(street: str, number: str) -> str:
    """The address as written, whitespace collapsed: 'Prager Straße 8 - 10'."""
    return " ".join(f"{street} {number}".split())
