"""CAP 1.2 warnings of CONSTRUCTED level crossings, validated against OASIS's schema
(tests/xsd/CAP-v1.2.xsd), and their delivery to a local webhook receiver: each once, an
undelivered one again at the next dispatch, an old one never."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from types import SimpleNamespace

import pandas as pd
import pytest
import xmlschema

from odp.indicators import cap
from odp.indicators.situation import crossings, parse_profile, units_of
from odp.indicators.warnings import dispatch
from odp.runs.alerts import Channels
from odp.spec import load_city
from tests.helpers import REPO, WebhookReceiver
from tests.unit.test_situation_indicators import KLOTZSCHE, RAIN, windows

SCHEMA = REPO / "tests" / "xsd" / "CAP-v1.2.xsd"
C = "{urn:oasis:names:tc:emergency:cap:1.2}"
A = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="module")
def made():
    city = load_city(REPO)
    units = units_of(city)
    profile = parse_profile("heavy_rain", RAIN, "situation.toml")
    events = crossings(windows("01048", [0, 2, 3, 2, 0], KLOTZSCHE), profile)
    names = dict(zip(units.codes, units.names, strict=True))
    klotzsche = next(c for c, n in names.items() if n == "Klotzsche")
    areas = {("heavy_rain", "01048"): [klotzsche]}
    warnings = cap.warnings_of(events, {"heavy_rain": profile}, areas, "umweltamt@dresden.de",
                               "situation-dresden", "Europe/Berlin")
    shapes = cap.polygons(units, 10.0)
    feed = cap.feed(warnings, "umweltamt@dresden.de", {"sender_name": "Umweltamt"}, shapes,
                    names, "https://portal.example/dataset/situation-dresden", "Warnungen",
                    "2024-11-20T15:40:00+01:00")
    return SimpleNamespace(warnings=warnings, feed=feed, schema=xmlschema.XMLSchema(SCHEMA),
                           klotzsche=klotzsche)


def alerts_of(feed: bytes) -> list[ET.Element]:
    return [e.find(f"{A}content/{C}alert") for e in ET.fromstring(feed).iter(f"{A}entry")]


def test_every_alert_of_the_feed_is_valid_cap_1_2(made):
    alerts = alerts_of(made.feed)
    assert len(alerts) == 4  # 14:10 enter markant, 14:20 Unwetter, 14:30 markant, 14:40 end
    for alert in alerts:
        made.schema.validate(ET.tostring(alert, encoding="unicode"))


def test_the_schema_rejects_what_cap_forbids_so_the_validation_means_something(made):
    text = ET.tostring(alerts_of(made.feed)[0], encoding="unicode")
    for broken in (text.replace("+01:00</ns0:sent>", "Z</ns0:sent>"),  # CAP: no Z, an offset
                   text.replace(">Observed<", ">Measured<")):
        assert broken != text
        with pytest.raises(xmlschema.XMLSchemaValidationError):
            made.schema.validate(broken)


def test_message_types_references_and_times_follow_the_crossings(made):
    got = [(a.findtext(f"{C}msgType"), a.findtext(f"{C}sent"),
            a.findtext(f"{C}info/{C}severity")) for a in reversed(alerts_of(made.feed))]
    assert got == [("Alert", "2024-11-20T15:10:00+01:00", "Moderate"),
                   ("Update", "2024-11-20T15:20:00+01:00", "Severe"),
                   ("Update", "2024-11-20T15:30:00+01:00", "Moderate"),
                   ("Cancel", "2024-11-20T15:40:00+01:00", "Minor")]
    first, second = made.warnings[:2]
    assert first.references == ""
    assert second.references == f"umweltamt@dresden.de,{first.identifier},{first.sent}"
    assert first.identifier == ("dresden.de.situation-dresden.starkregen.01048.sum_1h."
                                "20241120T1410Z.2")
    cancel = alerts_of(made.feed)[0]  # newest first
    assert cancel.findtext(f"{C}msgType") == "Cancel"
    assert cancel.findtext(f"{C}info/{C}responseType") == "AllClear"


def test_the_area_is_the_stadtteil_polygon_in_lat_lon_closed(made):
    alert = alerts_of(made.feed)[-1]
    (area,) = alert.iter(f"{C}area")
    assert area.findtext(f"{C}areaDesc") == "Klotzsche"
    assert area.findtext(f"{C}geocode/{C}value") == made.klotzsche
    ring = area.findtext(f"{C}polygon").split()
    assert ring[0] == ring[-1] and len(ring) >= 4
    lats, lons = zip(*(map(float, p.split(",")) for p in ring), strict=True)
    # Klotzsche lies north of the city centre (51.05 N, 13.74 E)
    assert 51.08 < min(lats) < max(lats) < 51.18 and 13.65 < min(lons) < max(lons) < 13.85


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


def test_each_crossing_is_sent_once_and_an_undelivered_one_at_the_next_dispatch(made, hook,
                                                                               tmp_path):
    channels = Channels(webhooks=[{"url": hook.url, "format": "slack"}], city="dresden")
    dataset = SimpleNamespace(name="situation-dresden")
    newest = pd.Timestamp("2024-11-20T14:40Z")
    hook.fail = True
    assert dispatch(tmp_path, dataset, made.warnings[:2], channels, newest, "24h") == []
    hook.fail = False
    sent = dispatch(tmp_path, dataset, made.warnings, channels, newest, "24h")
    assert sent == [w.identifier for w in made.warnings]
    assert dispatch(tmp_path, dataset, made.warnings, channels, newest, "24h") == []
    texts = [m["text"] for m in hook.received]
    assert len(texts) == 4
    assert texts[0] == ("[odp dresden] Starkregen: markant an der Station Station 01048: "
                        "Starkregen: Stufe 2 (markant) an der Station Station 01048 seit "
                        "20.11.2024 15:10 MEZ. Gemessen: 1,0 mm (sum_1h) bis 20.11.2024 "
                        "15:10 MEZ.")
    assert texts[-1].startswith("[odp dresden] Entwarnung Starkregen an der Station")


def test_a_crossing_older_than_alert_max_age_is_never_sent(made, hook, tmp_path):
    channels = Channels(webhooks=[{"url": hook.url, "format": "slack"}], city="dresden")
    dataset = SimpleNamespace(name="situation-dresden")
    days_later = pd.Timestamp("2024-11-23T14:40Z")
    assert dispatch(tmp_path, dataset, made.warnings, channels, days_later, "24h") == []
    assert dispatch(tmp_path, dataset, made.warnings, channels, days_later, "100h") == []
    assert hook.received == []  # recorded as too old the first time: not sent later either
