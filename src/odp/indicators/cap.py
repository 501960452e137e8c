"""Warnings as OASIS Common Alerting Protocol 1.2 (the format the DWD and the federal warning
system use): one `<alert>` per level crossing, its `info/area` the Stadtteile the warning is for
(polygons in WGS84), collected in an Atom feed (RFC 4287) whose entries carry the alerts inline
(`content type="application/cap+xml"`).

Entering a warning level from none is an `Alert`; a change between warning levels an `Update`,
the end of a warning a `Cancel` — both reference the alert before them (`references`:
sender,identifier,sent). `sent` is the time of the crossing (the data's time, in the city's
time zone with its offset), so the feed of the same data is the same file byte for byte.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from odp.indicators.page import local_time
from odp.indicators.situation import Profile, Units

CAP = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM = "http://www.w3.org/2005/Atom"
PLACES = {"station": "an der Station", "gauge": "am Pegel", "air_station": "an der Messstation",
          "stadtteil": "im Stadtteil"}


@dataclass(frozen=True)
class Warning:
    """One level crossing, ready for CAP and the alert channels."""

    identifier: str
    sent: str  # CAP dateTime with offset, the crossing's time in the city's zone
    msg_type: str  # Alert | Update | Cancel
    references: str  # "sender,identifier,sent" of the alert before it ("" for an Alert)
    headline: str
    description: str
    event: dict[str, Any]  # the crossing (odp.indicators.situation.crossings row)
    profile: Profile
    areas: tuple[str, ...]  # Stadtteil codes

    @property
    def sent_utc(self) -> str:
        return pd.Timestamp(self.sent).tz_convert("UTC").isoformat()


def cap_time(stamp: Any, zone: str) -> str:
    """A CAP dateTime: local time with its UTC offset, no fraction, never `Z`."""
    return pd.Timestamp(stamp).tz_convert(ZoneInfo(zone)).isoformat(timespec="seconds")


def identifier(sender: str, dataset: str, event: Mapping[str, Any]) -> str:
    """A stable identifier: sender domain, dataset, topic, place, parameter, UTC time, level
    (no spaces, commas, < or &, as CAP requires)."""
    domain = sender.split("@")[-1]
    stamp = pd.Timestamp(event["timestamp"]).tz_convert("UTC").strftime("%Y%m%dT%H%MZ")
    parts = [domain, dataset, event["topic"], event["feature_id"], event["parameter"], stamp,
             str(event["to_level"])]
    return re.sub(r"[^A-Za-z0-9._:-]", "-", ".".join(str(p) for p in parts))


def _number(value: Any) -> str:
    return "—" if value is None or pd.isna(value) else f"{float(value):.1f}".replace(".", ",")


def texts(event: Mapping[str, Any], profile: Profile, msg_type: str, before: str,
          zone: str) -> tuple[str, str]:
    """German headline and description of a crossing."""
    place = f"{PLACES[profile.feature]} {event['name'] or event['feature_id']}"
    when = local_time(event["timestamp"], zone)
    measured = (f"Gemessen: {_number(event['value'])} {profile.unit} ({event['parameter']}) "
                f"bis {when}.")
    if msg_type == "Cancel":
        return (f"Entwarnung {profile.title} {place}",
                f"{profile.title}: die Warnstufe {before} ist seit {when} verlassen "
                f"(jetzt: {event['to_name']}). {measured}")
    return (f"{profile.title}: {event['to_name']} {place}",
            f"{profile.title}: Stufe {event['to_level']} ({event['to_name']}) {place} seit "
            f"{when}. {measured}")


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    child = ET.SubElement(parent, f"{{{CAP}}}{tag}")
    if text is not None:
        child.text = text
    return child


def _pair(parent: ET.Element, tag: str, name: str, value: str) -> None:
    pair = _sub(parent, tag)
    _sub(pair, "valueName", name)
    _sub(pair, "value", value)


def polygons(units: Units, tolerance_m: float) -> dict[str, list[str]]:
    """Per Stadtteil code its CAP polygons: "lat,lon" pairs (WGS84, 5 decimals ≈ 1 m), first
    = last, one per part, simplified to `tolerance_m` (holes are not part of CAP)."""
    import shapely

    from odp.georeference.crs import WGS84, transform

    out: dict[str, list[str]] = {}
    for code, geom in zip(units.codes, units.geoms, strict=True):
        simple = shapely.simplify(geom, tolerance_m, preserve_topology=True)
        rings = []
        for part in getattr(simple, "geoms", [simple]):
            if part.geom_type != "Polygon" or part.is_empty:
                continue
            x, y = np.asarray(part.exterior.coords).T[:2]
            lon, lat = transform(x, y, units.crs, WGS84)
            pairs = [f"{la:.5f},{lo:.5f}" for lo, la in zip(lon, lat, strict=True)]
            pairs[-1] = pairs[0]
            if len(pairs) >= 4:
                rings.append(" ".join(pairs))
        out[str(code)] = rings
    return out


def alert(warning: Warning, sender: str, settings: Mapping[str, Any], shapes: Mapping[str, list[
        str]], names: Mapping[str, str]) -> ET.Element:
    """One CAP 1.2 `<alert>` (element order as the schema's sequence)."""
    root = ET.Element(f"{{{CAP}}}alert")
    for tag, text in (("identifier", warning.identifier), ("sender", sender),
                      ("sent", warning.sent), ("status", "Actual"),
                      ("msgType", warning.msg_type), ("scope", "Public")):
        _sub(root, tag, text)
    if warning.references:
        _sub(root, "references", warning.references)
    info = _sub(root, "info")
    cap, event, cancel = warning.profile.cap, warning.event, warning.msg_type == "Cancel"
    _sub(info, "language", "de-DE")
    _sub(info, "category", str(cap.get("category", "Other")))
    _sub(info, "event", str(cap.get("event", warning.profile.title)))
    _sub(info, "responseType", "AllClear" if cancel else "Monitor")
    _sub(info, "urgency", "Past" if cancel else "Immediate")
    _sub(info, "severity", "Minor" if cancel else warning.profile.severity(event["to_level"]))
    _sub(info, "certainty", "Observed")
    _pair(info, "eventCode", "odp:topic", warning.profile.topic)
    _sub(info, "effective", warning.sent)
    _sub(info, "onset", warning.sent)
    if settings.get("sender_name"):
        _sub(info, "senderName", str(settings["sender_name"]))
    _sub(info, "headline", warning.headline)
    _sub(info, "description", warning.description)
    if settings.get("web"):
        _sub(info, "web", str(settings["web"]))
    if settings.get("contact"):
        _sub(info, "contact", str(settings["contact"]))
    _pair(info, "parameter", "Stufe", str(event["to_level"]))
    _pair(info, "parameter", "Stufenname", str(event["to_name"]))
    _pair(info, "parameter", "Messwert", f"{_number(event['value'])} {warning.profile.unit}")
    _pair(info, "parameter", "Ort", f"{warning.profile.feature} {event['feature_id']}")
    for code in warning.areas:
        area = _sub(info, "area")
        _sub(area, "areaDesc", names.get(code, code))
        for ring in shapes.get(code, []):
            _sub(area, "polygon", ring)
        _pair(area, "geocode", "stadtteil_nr", code)
    return root


def alert_xml(element: ET.Element) -> str:
    """An `<alert>` as text with CAP as its default namespace."""
    return ET.tostring(element, encoding="unicode", default_namespace=CAP)


def feed(warnings: Sequence[Warning], sender: str, settings: Mapping[str, Any],
         shapes: Mapping[str, list[str]], names: Mapping[str, str], feed_id: str, title: str,
         updated: str) -> bytes:
    """The Atom feed of the warnings, newest first, each entry one inline CAP alert."""
    entries = []
    for warning in sorted(warnings, key=lambda w: (w.sent_utc, w.identifier), reverse=True):
        body = alert_xml(alert(warning, sender, settings, shapes, names))
        entries.append(
            f"<entry><id>{escape(feed_id)}#{escape(warning.identifier)}</id>"
            f"<title>{escape(warning.headline)}</title><updated>{warning.sent}</updated>"
            f"<summary>{escape(warning.description)}</summary>"
            f'<content type="application/cap+xml">{body}</content></entry>')
    author = escape(str(settings.get("sender_name") or sender))
    text = (f'<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="{ATOM}" xml:lang="de">'
            f"<id>{escape(feed_id)}</id><title>{escape(title)}</title>"
            f"<updated>{updated}</updated><author><name>{author}</name></author>"
            + "".join(entries) + "</feed>\n")
    return text.encode("utf-8")


def warnings_of(events: pd.DataFrame, profiles: Mapping[str, Profile],
                areas: Mapping[tuple[str, str], Sequence[str]], sender: str, dataset: str,
                zone: str) -> list[Warning]:
    """CAP warnings of the crossings (events in time order per series; `profiles` by name,
    `areas` by (profile name, feature id))."""
    from odp.indicators.situation import msg_types, previous_in_series

    records = events.to_dict("records")
    types, previous = msg_types(events), previous_in_series(events)
    out: list[Warning] = []
    for record, msg_type, before in zip(records, types, previous, strict=True):
        profile = profiles[record["profile"]]
        sent = cap_time(record["timestamp"], zone)
        ident = identifier(sender, dataset, record)
        reference, before_name = "", ""
        if before >= 0 and msg_type != "Alert":
            earlier = out[before]
            reference = f"{sender},{earlier.identifier},{earlier.sent}"
            before_name = str(earlier.event["to_name"])
        headline, description = texts(record, profile, msg_type, before_name, zone)
        out.append(Warning(ident, sent, msg_type, reference, headline, description, record,
                           profile, tuple(areas.get((record["profile"], record["feature_id"]),
                                                    ()))))
    return out
