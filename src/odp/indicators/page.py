"""The public situation page: a static German HTML page (`lang="de"`, no script, nothing
loaded from the internet) with a map of the Stadtteile drawn as inline SVG from the city's own
boundary file, coloured by the heavy-rain level, markers for the stations, gauges and air
stations with their levels, the data's time, a legend, the recent warnings, and a table with
the same content as a text alternative.

Accessibility: a level is never told by colour alone — each level has its own hatching on the
map and in the legend, every Stadtteil has its level in its tooltip (`<title>`) and every
marker a text label; the table says all of it in words. The colours follow the DWD's warning
colours (yellow, orange, red, violet) and have a dark outline against each other.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from odp.html_page import page
from odp.indicators.situation import Units

TEMPLATES = Path(__file__).parent / "templates"
BODY, STYLE = TEMPLATES / "situation.html", TEMPLATES / "situation.css"  # in odp.html_page's frame
WIDTH = 760  # px of the map's viewBox; the height follows the city's shape
SIMPLIFY_M = 20.0  # Stadtteil outlines on the page: 20 m is below a pixel at this width

# Map colours per level (DWD warning colours; 0 = no warning, None = undetermined) and the
# hatching that tells the same without colour.
LEVEL_COLORS: dict[int | None, str] = {0: "#d9f0d3", 1: "#ffeb3b", 2: "#fb8c00", 3: "#e53935",
                                       4: "#7b1fa2", None: "#bdbdbd"}
PATTERNS: dict[int | None, str] = {
    2: '<path d="M0,8 L8,0" stroke="#000" stroke-width="1"/>',
    3: '<path d="M0,8 L8,0 M0,0 L8,8" stroke="#000" stroke-width="1"/>',
    4: '<path d="M0,8 L8,0 M0,0 L8,8 M4,0 L4,8" stroke="#fff" stroke-width="1.4"/>',
    None: '<circle cx="4" cy="4" r="1.2" fill="#000"/>',
}
MARKERS = {"station": "▲", "gauge": "■", "air_station": "●"}
FEATURE_NAMES = {"station": "Messstation", "gauge": "Pegel", "air_station": "Luftmessstation",
                 "stadtteil": "Stadtteil"}


@dataclass(frozen=True)
class Frame:
    """The projection of the city's CRS onto the SVG: x right, y down."""

    x0: float
    y1: float
    scale: float
    height: float
    crs: str  # the city's projected CRS the units are in

    def xy(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray(x) - self.x0) * self.scale, (self.y1 - np.asarray(y)) * self.scale


def frame_of(units: Units) -> Frame:
    import shapely

    x0, y0, x1, y1 = shapely.total_bounds(units.geoms)
    scale = WIDTH / (x1 - x0)
    return Frame(float(x0), float(y1), float(scale), float((y1 - y0) * scale), units.crs)


def level_key(level: Any) -> int | None:
    return None if level is None or pd.isna(level) else int(level)


def de_number(value: Any, digits: int = 1) -> str:
    return "—" if value is None or pd.isna(value) else f"{float(value):.{digits}f}".replace(
        ".", ",")


# German names of the zone abbreviations: the night the clocks go back has 02:00-02:59 twice,
# told apart only by the zone (MESZ, then MEZ)
ZONE_NAMES = {"CET": "MEZ", "CEST": "MESZ"}


def local_time(stamp: Any, zone: str) -> str:
    """`29.10.2023 02:50 MESZ`: local time with its zone (summer or winter time)."""
    if stamp is None or pd.isna(stamp):
        return "—"
    local = pd.Timestamp(stamp).tz_convert(ZoneInfo(zone))
    abbreviation = local.strftime("%Z")
    return f"{local.strftime('%d.%m.%Y %H:%M')} {ZONE_NAMES.get(abbreviation, abbreviation)}"


def _path(geom: Any, frame: Frame) -> str:
    parts = []
    for polygon in getattr(geom, "geoms", [geom]):
        if polygon.geom_type != "Polygon":
            continue
        for ring in [polygon.exterior, *polygon.interiors]:
            x, y = frame.xy(*np.asarray(ring.coords).T[:2])
            points = " L".join(f"{a:.1f},{b:.1f}" for a, b in zip(x, y, strict=True))
            parts.append(f"M{points}Z")
    return "".join(parts)


def _level_text(row: Mapping[str, Any] | None) -> str:
    if row is None:
        return "keine Daten"
    name = row.get("level_name")
    return str(name) if name is not None and not pd.isna(name) else "unbestimmt"


def map_svg(units: Units, frame: Frame, by_unit: Mapping[str, Mapping[str, Any]],
            markers: pd.DataFrame, map_title: str) -> str:
    """The Stadtteile (one `<path>` each, coloured and hatched by level) and the markers."""
    import shapely

    simple = shapely.simplify(units.geoms, SIMPLIFY_M, preserve_topology=True)
    parts = [f'<svg class="map" role="img" aria-labelledby="map-title" '
             f'viewBox="0 0 {WIDTH} {frame.height:.0f}" xmlns="http://www.w3.org/2000/svg">',
             f'<title id="map-title">Karte: {html.escape(map_title)} je Stadtteil</title>',
             "<defs>" + "".join(
                 f'<pattern id="hatch-{_cls(k)}" width="8" height="8" '
                 f'patternUnits="userSpaceOnUse">{p}</pattern>' for k, p in PATTERNS.items())
             + "</defs>"]
    for code, name, geom in zip(units.codes, units.names, simple, strict=True):
        row = by_unit.get(str(code))
        key = level_key(row["level"]) if row is not None else None
        d = _path(geom, frame)
        label = f"{name}: {_level_text(row)}"
        if row is not None:
            label += f" ({de_number(row['value'])} {row['unit']})"
        parts.append(f'<path class="stadtteil level-{_cls(key)}" '
                     f'data-stadtteil="{html.escape(str(code))}" '
                     f'data-level="{"" if key is None else key}" d="{d}" tabindex="0">'
                     f"<title>{html.escape(label)}</title></path>")
        if key in PATTERNS:
            parts.append(f'<path class="hatch" aria-hidden="true" d="{d}" '
                         f'fill="url(#hatch-{_cls(key)})"/>')
    parts += _markers(markers, frame)
    parts.append("</svg>")
    return "\n".join(parts)


def _cls(key: int | None) -> str:
    return "none" if key is None else str(key)


def _markers(rows: pd.DataFrame, frame: Frame) -> list[str]:
    """A symbol per station, gauge or air station inside the map, labelled with its level; a
    place with several parameters (an air station's pollutants) is one symbol labelled with its
    highest level and that parameter (as the UBA's overall index: the worst pollutant counts;
    an air station's pollutant always), every parameter's level in its tooltip."""
    from odp.georeference.crs import WGS84, transform

    out = []
    placed = rows[rows["longitude"].notna() & rows["latitude"].notna()]
    if placed.empty:
        return out
    places = [g for _, g in placed.groupby(["feature", "feature_id"], sort=True)]
    first = pd.concat([g.iloc[:1] for g in places])
    x, y = transform(first["longitude"].astype(float).to_numpy(),
                     first["latitude"].astype(float).to_numpy(), WGS84, frame.crs)
    sx, sy = frame.xy(x, y)
    for group, px, py in zip(places, sx, sy, strict=True):
        if not (0 <= px <= WIDTH and 0 <= py <= frame.height):
            continue  # outside the city (e.g. an upstream gauge): in the table only
        out.append(_marker(group, float(px), float(py)))
    return out


def _marker(group: pd.DataFrame, px: float, py: float) -> str:
    """One place's symbol and label (`data-level`: the level the label names)."""
    ordered = group.assign(_key=group["level"].astype("Float64").fillna(-1)).sort_values(
        ["_key", "parameter"], ascending=[False, True], kind="stable")
    rows = ordered.to_dict("records")
    top = rows[0]
    name = top["name"] if _text(top.get("name")) else top["feature_id"]
    text = f"{name}: {_level_text(top)}"
    tooltip = text
    if len(rows) > 1 or top["feature"] == "air_station":  # which pollutant it is
        text += f" ({top['parameter']})"
        tooltip = f"{name}: " + ", ".join(f"{r['parameter']} {_level_text(r)}" for r in rows)
    key = level_key(top["level"])
    return (f'<g class="marker" data-feature="{html.escape(str(top["feature"]))}" '
            f'data-id="{html.escape(str(top["feature_id"]))}" '
            f'data-level="{"" if key is None else key}">'
            f"<title>{html.escape(tooltip)}</title>"
            f'<text x="{px:.1f}" y="{py + 5:.1f}" text-anchor="middle" font-size="16" '
            f'fill="#000" stroke="#fff" stroke-width="1">'
            f"{MARKERS.get(str(top['feature']), '◆')}</text>"
            f'<text class="marker-label" x="{px + 10:.1f}" y="{py + 4:.1f}">'
            f"{html.escape(text)}</text></g>")


def legend(levels: Mapping[int | None, str], map_title: str, features: Sequence[str]) -> str:
    """Swatches with colour and hatching, each with its level's name in words; marker symbols."""
    items = []
    for key, name in levels.items():
        hatch = (f'<rect width="28" height="18" fill="url(#legend-hatch-{_cls(key)})"/>'
                 if key in PATTERNS else "")
        pattern = (f'<defs><pattern id="legend-hatch-{_cls(key)}" width="8" height="8" '
                   f'patternUnits="userSpaceOnUse">{PATTERNS[key]}</pattern></defs>'
                   if key in PATTERNS else "")
        items.append(f'<li><svg width="28" height="18" aria-hidden="true">{pattern}'
                     f'<rect width="28" height="18" class="level-{_cls(key)}"/>{hatch}</svg>'
                     f"<span>{html.escape(name)}</span></li>")
    symbols = [f"<li><span aria-hidden=\"true\">{MARKERS[f]}</span>"
               f"<span>{FEATURE_NAMES[f]} (Beschriftung: ihre Stufe)</span></li>"
               for f in features if f in MARKERS]
    return (f"<h2>Legende: {html.escape(map_title)}</h2><ul>{''.join(items)}</ul>"
            f"<ul>{''.join(symbols)}</ul>")


def level_css() -> str:
    return "\n".join(f"  .level-{_cls(k)} {{ fill: {c}; }}" for k, c in LEVEL_COLORS.items())


def table(rows: pd.DataFrame, titles: Mapping[str, str], zone: str) -> str:
    """The text alternative: every row of the situation in words."""
    head = ("<table id=\"werte\"><caption>Aktuelle Werte und Stufen</caption><thead><tr>"
            "<th scope=\"col\">Thema</th><th scope=\"col\">Art</th><th scope=\"col\">Name</th>"
            "<th scope=\"col\">Kennung</th><th scope=\"col\">Messgröße</th>"
            "<th scope=\"col\">Wert</th><th scope=\"col\">Stufe</th>"
            "<th scope=\"col\">Zeitpunkt</th><th scope=\"col\">Wert von</th></tr></thead><tbody>")
    body = []
    ordered = rows.sort_values(["topic", "feature", "name", "feature_id", "parameter"],
                               kind="stable", na_position="last")
    for row in ordered.to_dict("records"):
        level = _level_text(row)
        strong = ' class="warn"' if row.get("warning") is True else ""
        origin = row.get("from_station")
        body.append(
            f'<tr data-topic="{html.escape(str(row["topic"]))}" '
            f'data-id="{html.escape(str(row["feature_id"]))}">'
            f"<td>{html.escape(titles.get(str(row['topic']), str(row['topic'])))}</td>"
            f"<td>{FEATURE_NAMES.get(str(row['feature']), html.escape(str(row['feature'])))}"
            f"</td><td>{html.escape(_text(row.get('name')))}</td>"
            f"<td>{html.escape(str(row['feature_id']))}</td>"
            f"<td>{html.escape(str(row['parameter']))}</td>"
            f'<td class="num">{de_number(row["value"])} {html.escape(_text(row.get("unit")))}'
            f"</td><td{strong}>{html.escape(level)}</td>"
            f"<td>{local_time(row['timestamp'], zone)}</td>"
            f"<td>{html.escape(_text(origin))}</td></tr>")
    return head + "".join(body) + "</tbody></table>"


def _text(value: Any) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def warnings_table(warnings: Sequence[Any], names: Mapping[str, str], zone: str) -> str:
    if not warnings:
        return "<p>Keine Warnungen in diesem Zeitraum.</p>"
    rows = []
    for w in sorted(warnings, key=lambda w: (w.sent_utc, w.identifier), reverse=True):
        kind = {"Alert": "Warnung", "Update": "Änderung", "Cancel": "Entwarnung"}[w.msg_type]
        places = ", ".join(names.get(c, c) for c in w.areas[:12])
        if len(w.areas) > 12:
            places += f" und {len(w.areas) - 12} weitere"
        rows.append(f"<tr><td>{local_time(w.event['timestamp'], zone)}</td><td>{kind}</td>"
                    f"<td>{html.escape(w.headline)}</td><td>{html.escape(places)}</td></tr>")
    return ("<table id=\"warnungen-tabelle\"><caption>Eintritt in und Verlassen von "
            "Warnstufen</caption><thead><tr><th scope=\"col\">Zeitpunkt</th><th scope=\"col\">"
            "Art</th><th scope=\"col\">Meldung</th><th scope=\"col\">Stadtteile</th></tr>"
            "</thead><tbody>" + "".join(rows) + "</tbody></table>")


def render(rows: pd.DataFrame, units: Units, *, title: str, map_topic: str, map_title: str,
           levels: Mapping[int | None, str], titles: Mapping[str, str], inputs: str,
           warnings: Sequence[Any], zone: str, dataset_url: str) -> str:
    """The page for the situation rows (as published: typed columns)."""
    frame = frame_of(units)
    mapped = rows[(rows["topic"] == map_topic) & (rows["feature"] == "stadtteil")]
    by_unit = {str(r["feature_id"]): r for r in mapped.to_dict("records")}
    markers = rows[rows["feature"] != "stadtteil"]
    names = {str(c): str(n) for c, n in zip(units.codes, units.names, strict=True)}
    newest = rows["timestamp"].max() if len(rows) else None
    features = sorted(set(markers["feature"].astype(str)))
    style = Template(STYLE.read_text(encoding="utf-8")).substitute(level_css=level_css())
    body = Template(BODY.read_text(encoding="utf-8")).substitute(
        data_time=local_time(newest, zone) if newest is not None else "—",
        data_time_iso="" if newest is None else pd.Timestamp(newest).isoformat(),
        map_title=html.escape(map_title), inputs=html.escape(inputs),
        map=map_svg(units, frame, by_unit, markers, map_title),
        legend=legend(levels, map_title, features),
        warnings=warnings_table(warnings, names, zone), table=table(rows, titles, zone),
        zone=html.escape(zone), dataset_url=html.escape(dataset_url))
    return page(title, "odp situation page", style, body)
