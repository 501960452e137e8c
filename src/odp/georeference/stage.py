"""The georeference stage of a run, configured per dataset in `[georeference]`:

    [georeference]
    lon = "longitude"            # coordinate columns (x/east and y/north) …
    lat = "latitude"
    crs = "EPSG:4326"            # … and their CRS (4326, 25832, 25833, 31468, 31469, 3857)
    geometry = "geometry"        # or a column of GeoJSON/WKT lines or polygons instead
    assign_by = "representative_point"   # or "overlap" (largest share) for lines/polygons
    layers = ["wahlbezirke"]     # further polygon layers of the city, besides its districts
    outside = "quarantine"       # rows far outside the city: quarantine (default) or keep
    buffer_m = 2000              # overrides the city's buffer around its boundary
    address = { street = "street", housenumber = "", postcode = "postcode" }
                                 # geocode rows without coordinates against the address register
    reverse = true               # add the nearest register address (reverse_max_m, default 250)

Every row gets WGS84 `longitude`/`latitude`, the city's projected `easting`/`northing` and its
districts. Rows at (0, 0), with swapped axes or far outside the city are returned as `rejected`
with the reason (the run quarantines them); empty or repaired geometries are reported as
warnings. Coordinates are never invented: a row without a location gets no district.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from odp.errors import ConfigError
from odp.georeference import crs as crs_
from odp.georeference.geometry import OUTSIDE, CityExtent, check_points, parse_geometries, repair
from odp.georeference.layers import ASSIGN_MODES, city_layers, polygon_layer, project_root
from odp.spec import City, Dataset

KEYS = {"lon", "lat", "crs", "geometry", "assign_by", "layers", "outside", "buffer_m",
        "address", "reverse", "reverse_max_m"}
DEFAULT_BUFFER_M = 2000.0


@dataclass(frozen=True)
class Georeferenced:
    table: pd.DataFrame  # rows kept, with the georeference columns
    located: int  # rows with coordinates
    in_city: int  # rows inside a district of the smallest level (Dresden: a Stadtteil)
    rejected: pd.DataFrame = field(default_factory=lambda: _rejected([], [], [], [], []))
    warnings: list[str] = field(default_factory=list)

    def findings(self, table: pd.DataFrame, keys: pd.Series) -> pd.DataFrame:
        """The rejected rows as quarantine findings (`row` = 1-based position in `table`,
        the batch handed to `georeference`; `keys` = primary-key text per row of it)."""
        positions = table.index.get_indexer(self.rejected.index)
        return pd.DataFrame({
            "row": pd.array(positions + 1, dtype="Int64"),
            "key": pd.array(keys.to_numpy(dtype=object)[positions], dtype="string"),
            "field": self.rejected["field"].to_numpy(dtype=object),
            "rule": self.rejected["rule"].to_numpy(dtype=object),
            "severity": "error",
            "value": self.rejected["value"].to_numpy(dtype=object),
            "reason": self.rejected["reason"].to_numpy(dtype=object),
        })

    @staticmethod
    def messages(dataset: str, findings: pd.DataFrame) -> list[str]:
        """One line per quarantined row, in the run's message format."""
        return [f"{dataset}: row {f.row} ({f.key}): field '{f.field}': {f.reason}"
                for f in findings.itertuples(index=False)]


def _rejected(index: Any, fields: Any, rules: Any, values: Any, reasons: Any) -> pd.DataFrame:
    return pd.DataFrame({"field": fields, "rule": rules, "value": values, "reason": reasons},
                        index=pd.Index(index), dtype="string")


def _rule(dataset: Dataset) -> dict[str, Any]:
    rule = dict(dataset.georeference)
    where = dataset.definition_path
    unknown = sorted(set(rule) - KEYS)
    if unknown:
        raise ConfigError(f"{where}: [georeference] unknown key '{unknown[0]}' "
                          f"(known: {', '.join(sorted(KEYS))})")
    try:
        rule["crs"] = crs_.normalise(rule.get("crs", crs_.WGS84))
    except crs_.CrsError as exc:
        raise ConfigError(f"{where}: [georeference] crs: {exc}") from None
    if rule.get("assign_by", ASSIGN_MODES[0]) not in ASSIGN_MODES:
        raise ConfigError(f"{where}: [georeference] assign_by must be one of "
                          f"{', '.join(ASSIGN_MODES)}")
    if rule.get("outside", "quarantine") not in ("quarantine", "keep"):
        raise ConfigError(f"{where}: [georeference] outside must be 'quarantine' or 'keep'")
    return rule


def city_extent(city: City, buffer_m: float | None = None) -> CityExtent:
    raw = city_layers(city).get("city_boundary")
    if not raw or "path" not in raw:
        raise ConfigError(f"{city.path}: [reference_layers.city_boundary] path is missing")
    buffer = float(raw.get("buffer_m", DEFAULT_BUFFER_M) if buffer_m is None else buffer_m)
    return _extent(project_root(city) / raw["path"], city.name, city.crs, buffer)


@lru_cache(maxsize=8)
def _extent(path: Path, name: str, crs: str, buffer_m: float) -> CityExtent:
    return CityExtent.load(path, name, crs, buffer_m)


def address_register(city: City) -> Any:
    """The city's address register (`[reference_layers.addresses]`), loaded once."""
    from odp.georeference.register import load_register

    return load_register(city)


def georeference(table: pd.DataFrame, dataset: Dataset, city: City,
                 first_row: int = 1) -> Georeferenced:
    """Add longitude/latitude (WGS84), easting/northing (city CRS) and district columns.
    `first_row`: the number a warning gives the table's first row (a part of the rows)."""
    if not dataset.georeference:
        return Georeferenced(table, 0, 0)
    from odp.georeference.districts import district_index

    rule = _rule(dataset)
    src = rule["crs"]
    out = table.copy(deep=False)  # copy-on-write: the new columns are the copy's alone
    warnings: list[str] = []
    geoms = None
    if column := rule.get("geometry"):
        _require(out, column, dataset)
        geoms, unreadable = parse_geometries(out[column], src)
        geoms, issues = repair(geoms)
        issues = unreadable.where(unreadable != "", issues)
        warnings += [f"row {out.index.get_loc(i) + first_row}: field '{column}': {text}"
                     for i, text in issues[issues != ""].items()]
        points = geoms.representative_point()
        x = np.where(geoms.isna(), np.nan, points.x.to_numpy(dtype=float, na_value=np.nan))
        y = np.where(geoms.isna(), np.nan, points.y.to_numpy(dtype=float, na_value=np.nan))
        fields = column
    else:
        x_col, y_col = rule.get("lon", "longitude"), rule.get("lat", "latitude")
        for name in (x_col, y_col):
            _require(out, name, dataset)
        x = _floats(out[x_col])
        y = _floats(out[y_col])
        fields = f"{x_col},{y_col}"

    extent = city_extent(city, rule.get("buffer_m"))
    checked = check_points(x, y, src, extent)
    rules = checked["rule"].to_numpy(dtype=object)
    if rule.get("outside", "quarantine") == "keep":
        rules = np.where(rules == OUTSIDE, "", rules)
    bad = rules != ""
    east, north = checked["easting"].to_numpy(), checked["northing"].to_numpy()
    # Via the city's CRS: pyproj's DHDN → ETRS89 path is the one east/north took (DHDN → WGS84
    # directly may pick another datum transformation, ~1 m apart).
    lon, lat = (x.copy(), y.copy()) if src == crs_.WGS84 else crs_.transform(
        east, north, city.crs, crs_.WGS84)

    if address := rule.get("address"):
        lon, lat, east, north = _geocode(out, address, city, lon, lat, east, north, dataset)

    out["longitude"] = pd.array(lon, dtype="Float64").round(crs_.DEGREE_DECIMALS)
    out["latitude"] = pd.array(lat, dtype="Float64").round(crs_.DEGREE_DECIMALS)
    out["easting"] = pd.array(east, dtype="Float64").round(crs_.PROJECTED_DECIMALS)  # mm
    out["northing"] = pd.array(north, dtype="Float64").round(crs_.PROJECTED_DECIMALS)
    if geoms is not None:  # WGS84 now, in the format it came in (WKT stays WKT)
        wgs = geoms.to_crs(crs_.WGS84)
        as_text = _wkt_text if _is_wkt(out[rule["geometry"]]) else _geojson_text
        out[rule["geometry"]] = pd.array(
            [None if g is None else as_text(g) for g in wgs], dtype="string")

    index = district_index(city)
    mode = rule.get("assign_by", ASSIGN_MODES[0])
    if geoms is not None and mode == "overlap":
        projected = geoms.to_crs(city.crs).to_numpy()
        districts = index.assign_geometries(projected, out.index, mode)
    else:
        districts = index.assign(out["easting"], out["northing"])
    for name in rule.get("layers", []):
        layer = polygon_layer(city, name)
        if geoms is not None and mode == "overlap":
            hit = layer.assign_geometries(geoms.to_crs(city.crs).to_numpy(), mode)
        else:
            hit = layer.assign_xy(east, north)
        districts = districts.join(layer.frame(hit, out.index))
    for column in districts.columns:
        out[column] = districts[column].where(~bad)

    if rule.get("reverse"):
        near = address_register(city).reverse(out["longitude"], out["latitude"],
                                              float(rule.get("reverse_max_m", 250)))
        for column in near.columns:
            out[column] = near[column]

    values = [f"{a:g}|{b:g}" for a, b in zip(x[bad], y[bad], strict=True)]
    rejected = _rejected(out.index[bad], [fields] * int(bad.sum()), rules[bad], values,
                         checked["reason"].to_numpy(dtype=object)[bad])
    kept = out[~bad]
    return Georeferenced(kept, int(kept["easting"].notna().sum()),
                         int(kept[index.unit_column].notna().sum()), rejected, warnings)


def _geocode(out: pd.DataFrame, address: dict[str, str], city: City, lon: np.ndarray,
             lat: np.ndarray, east: np.ndarray, north: np.ndarray, dataset: Dataset
             ) -> tuple[np.ndarray, ...]:
    """Rows without coordinates: the register's coordinate of their address (or none)."""
    street = address.get("street", "street")
    _require(out, street, dataset)
    number, postcode = address.get("housenumber"), address.get("postcode")
    register = address_register(city)
    found = register.geocode(out[street], out[number] if number else None,
                             out[postcode] if postcode else None)
    missing = ~(np.isfinite(lon) & np.isfinite(lat))
    quality = found["geocode_quality"].copy()
    quality[~missing] = "source"  # the row brought its own coordinates
    out["geocode_quality"] = quality
    lon, lat = lon.copy(), lat.copy()
    lon[missing] = found["longitude"].to_numpy(dtype=float, na_value=np.nan)[missing]
    lat[missing] = found["latitude"].to_numpy(dtype=float, na_value=np.nan)[missing]
    e2, n2 = crs_.transform(lon[missing], lat[missing], crs_.WGS84, city.crs)
    east, north = east.copy(), north.copy()
    east[missing], north[missing] = e2, n2
    return lon, lat, east, north


def _floats(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").astype("Float64").to_numpy(
        dtype=float, na_value=np.nan)


def check_filled(table: pd.DataFrame, dataset: Dataset) -> None:
    """Every schema field this stage is to fill is filled: a field the rule gives no column for
    (e.g. `geocode_quality` without `address`) is a configuration error, named, before any
    write."""
    wanted = [f.name for f in dataset.schema.fields if f.derived == "georeference"]
    if missing := [name for name in wanted if name not in table.columns]:
        delivered = {f.name for f in dataset.schema.source_fields}
        made = ", ".join(c for c in table.columns if c not in delivered) or "-"
        raise ConfigError(
            f"{dataset.definition_path}: the schema's field '{missing[0]}' is odp:derived "
            f"\"georeference\", but [georeference] fills no such column (it fills: {made})")


def _require(table: pd.DataFrame, column: str, dataset: Dataset) -> None:
    if column not in table.columns:
        raise ConfigError(f"{dataset.definition_path}: georeference column '{column}' missing")


def _is_wkt(column: pd.Series) -> bool:
    first = column.dropna()
    return not first.empty and isinstance(first.iloc[0], str) and \
        not first.iloc[0].lstrip().startswith("{")


def _wkt_text(geom: Any) -> str:
    import shapely

    return shapely.to_wkt(geom, rounding_precision=8, trim=True)


def _geojson_text(geom: Any) -> str:
    import shapely

    return shapely.to_geojson(shapely.transform(geom, lambda c: np.round(c, 8)))
