"""The current situation end to end on the real local CKAN: the DWD precipitation datasets
(replayed), the heavy-rain windows derived from them, then the situation dataset — its table,
the situation page (rendered by headless Chromium) and the CAP 1.2 feed (validated against
OASIS's XSD), and the level crossings at a local webhook receiver, each once.

Two 10-minute products are CONSTRUCTED in the real format (scenario "heavy-rain"): Dresden-
Klotzsche (01048) has the heavy-rain day of tests/unit/test_indicators_heavy_rain.py (34 mm on
2024-11-20 14:00–15:20 UTC: markant, then Unwetter, then back), and Dresden-Hosterwitz (01050)
a CONSTRUCTED shower at the end of the data (2024-11-21 05:40–06:50 UTC) that is markant at the
newest time. Every other response is the recorded one. The flood input of the situation is not
run here: it is left out (not yet published), as a city without it would see."""

from __future__ import annotations

import json
import threading
import urllib.request
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from odp_dev.replay import ReplayServer
from tests.helpers import REPO, all_rows, chromium, cli_env, cli_reports, make_project, odp_cli
from tests.integration.derived_runs import add_ten_minute_archive
from tests.integration.test_derived_heavy_rain import recordings_with_heavy_rain
from tests.unit.test_indicators_heavy_rain import dresden_10min, ten_minute_product

pytestmark = pytest.mark.integration

TEN, HOURLY = "precipitation-dresden-10min", "precipitation-dresden-hourly"
WINDOWS, SITUATION = "heavy-rain-dresden-windows", "situation-dresden"
# The CONSTRUCTED shower at Hosterwitz (10-minute values, mm, intervals ending at these UTC
# times); 2024-11-21 00:00 … 06:50 is dry apart from it.
SHOWER = {"202411210550": 4.0, "202411210600": 5.0, "202411210610": 4.0, "202411210620": 3.0,
          "202411210630": 2.0, "202411210640": 1.5, "202411210650": 1.0}
CAP_XSD = REPO / "tests" / "xsd" / "CAP-v1.2.xsd"
ATOM = "{http://www.w3.org/2005/Atom}"
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
MARKANT_FILL = "rgb(251, 140, 0)"  # #fb8c00, odp.indicators.page.LEVEL_COLORS[2]


def shower_product() -> str:
    import pandas as pd

    from odp.sources.dwd_cdc import parse_product

    product = parse_product(dresden_10min("01050"), "01050")
    values: dict[str, float | None] = {}
    for stamp, value in zip(product["MESS_DATUM"], product["RWS_10"], strict=True):
        key = pd.Timestamp(stamp).strftime("%Y%m%d%H%M")
        values[key] = (SHOWER.get(key, 0.0) if key >= "202411210000"
                       else None if pd.isna(value) else float(value))
    assert max(values) == "202411210650", max(values)  # the shower ends at the newest time
    return ten_minute_product("01050", values)


def recordings(tmp: Path) -> Path:
    folder = recordings_with_heavy_rain(tmp)
    add_ten_minute_archive(folder, "01050", shower_product(), "shower",
                           "CONSTRUCTED shower at 01050 "
                           "(tests/integration/test_situation_end_to_end.py)")
    return folder


class Hook:
    """A local webhook receiver (the city file's [alerts.webhook], format slack)."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        received = self.received

        class Receiver(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture(scope="module")
def runs(portal, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("situation")
    root, names = make_project(tmp, [TEN, HOURLY, WINDOWS, SITUATION])
    hook = Hook()
    try:
        with ReplayServer(recordings(tmp), scenario="heavy-rain") as replay:
            env = cli_env(root, tmp / "state", replay.url, portal)
            env.update({"ODP_ALERT_WEBHOOK_URL": hook.url, "ODP_ALERT_WEBHOOK_TOKEN": "",
                        "ODP_SMTP_HOST": ""})
            inputs = odp_cli(env, "run", names[TEN], names[HOURLY], names[WINDOWS], "--json")
            first = odp_cli(env, "run", names[SITUATION], "--json")
            sent_first = list(hook.received)
            again = odp_cli(env, "run", names[SITUATION], "--json")
        yield {"names": names, "inputs": inputs, "first": first, "again": again,
               "sent_first": sent_first, "sent": hook.received, "tmp": tmp}
    finally:
        hook.server.shutdown()


def attachment(ckan, name: str, kind: str) -> dict:
    package = ckan.action.package_show(id=name)
    (found,) = [r for r in package["resources"] if r.get("odp_attachment") == kind]
    return found


def download(resource: dict, portal) -> bytes:
    request = urllib.request.Request(resource["url"],
                                     headers={"Authorization": portal.token()})
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 (local CKAN)
        return answer.read()


def test_the_situation_run_publishes_one_row_per_station_and_stadtteil(runs, ckan):
    names = runs["names"]
    for done in (runs["inputs"], runs["first"]):
        assert done.returncode == 0, done.stdout + done.stderr
    (report,) = cli_reports(runs["first"])
    assert report["status"] == "ok", report
    rows = all_rows(ckan, names[SITUATION])
    stations = {r["feature_id"]: r for r in rows if r["feature"] == "station"}
    assert set(stations) == {"01048", "01050", "01051"}
    # Hosterwitz at the newest time: the 1 h ending 06:50 holds 06:00 … 06:50:
    # 5.0 + 4.0 + 3.0 + 2.0 + 1.5 + 1.0 = 16.5 mm > 15: markant
    hosterwitz = stations["01050"]
    assert hosterwitz["timestamp"][:19] == "2024-11-21T06:50:00"
    assert (hosterwitz["value"], hosterwitz["level"], hosterwitz["level_name"]) == (
        16.5, 2, "markant")
    assert hosterwitz["warning"] is True and hosterwitz["input"].startswith(names[WINDOWS])
    parts = [r for r in rows if r["feature"] == "stadtteil"]
    assert len(parts) == 64  # every Stadtteil of reference/dresden/stadtteile.geojson
    by_name = {r["name"]: r for r in parts}
    # The Stadtteil the station lies in takes its value (nearest station: itself).
    assert by_name[hosterwitz["stadtteil"]]["from_station"] == "01050"
    assert by_name[hosterwitz["stadtteil"]]["level_name"] == "markant"
    assert by_name["Klotzsche"]["from_station"] == "01048"
    # The flood input was never published: left out, the run still succeeded.
    assert not [r for r in rows if r["topic"] == "hochwasser"]


def cap_alerts(feed: bytes) -> list[ET.Element]:
    root = ET.fromstring(feed)
    assert root.tag == f"{ATOM}feed"
    return [entry.find(f"{ATOM}content/{CAP}alert") for entry in root.iter(f"{ATOM}entry")]


def test_the_cap_feed_holds_each_crossing_as_a_valid_cap_1_2_alert(runs, ckan, portal):
    import xmlschema

    schema = xmlschema.XMLSchema(str(CAP_XSD))
    resource = attachment(ckan, runs["names"][SITUATION], "cap-feed")
    alerts = cap_alerts(download(resource, portal))
    for alert in alerts:
        schema.validate(ET.tostring(alert, encoding="unicode"))
    seen = {(a.findtext(f"{CAP}msgType"), a.findtext(f"{CAP}sent"),
             a.findtext(f"{CAP}info/{CAP}headline")) for a in alerts}
    # Klotzsche: the 1 h ending 14:40 is 1.5 + 3.5 + 6 + 9 = 20.0 > 15 (markant, CET 15:40);
    # ending 14:50 it is 27.0 > 25 (Unwetter); Hosterwitz: ending 06:20 4 + 5 + 4 + 3 = 16 > 15.
    assert ("Alert", "2024-11-20T15:40:00+01:00",
            "Starkregen: markant an der Station Dresden-Klotzsche") in seen
    assert ("Update", "2024-11-20T15:50:00+01:00",
            "Starkregen: Unwetter an der Station Dresden-Klotzsche") in seen
    assert ("Alert", "2024-11-21T07:20:00+01:00",
            "Starkregen: markant an der Station Dresden-Hosterwitz") in seen
    unwetter = next(a for a in alerts if "Unwetter" in a.findtext(f"{CAP}info/{CAP}headline"))
    assert unwetter.findtext(f"{CAP}info/{CAP}severity") == "Severe"
    first = next(a for a in alerts if a.findtext(f"{CAP}sent") == "2024-11-20T15:40:00+01:00")
    assert unwetter.findtext(f"{CAP}references") == ",".join(
        [first.findtext(f"{CAP}sender"), first.findtext(f"{CAP}identifier"),
         first.findtext(f"{CAP}sent")])
    areas = {a.findtext(f"{CAP}areaDesc"): a for a in unwetter.iter(f"{CAP}area")}
    assert "Klotzsche" in areas and "Hosterwitz/Pillnitz" not in areas
    ring = areas["Klotzsche"].findtext(f"{CAP}polygon").split()
    lat, lon = map(float, ring[0].split(","))
    assert ring[0] == ring[-1] and 50.9 < lat < 51.2 and 13.5 < lon < 14.0  # lat,lon WGS84


def test_the_situation_page_in_chromium_draws_a_markant_stadtteil_in_markant_colour(
        runs, ckan, portal, tmp_path):
    rows = all_rows(ckan, runs["names"][SITUATION])
    station = next(r for r in rows if r["feature_id"] == "01050" and r["feature"] == "station")
    code = next(r["feature_id"] for r in rows if r["feature"] == "stadtteil"
                and r["name"] == station["stadtteil"])
    page = download(attachment(ckan, runs["names"][SITUATION], "situation-page"), portal)
    text = page.decode("utf-8")
    assert '<html lang="de">' in text and "<script" not in text
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "").replace(
        portal.url, "")  # nothing loaded from elsewhere
    # A probe added for the test only: the computed fill of the Stadtteil's path, and the
    # element Chromium draws at a point inside it.
    probe = f"""<script>
      const path = document.querySelector('path[data-stadtteil="{code}"]');
      const box = path.getBoundingClientRect();
      let hit = null;
      for (let i = 1; i < 40 && !hit; i++) for (let j = 1; j < 40 && !hit; j++) {{
        const x = box.left + box.width * i / 40, y = box.top + box.height * j / 40;
        const p = new DOMPoint(x, y).matrixTransform(path.getScreenCTM().inverse());
        if (path.isPointInFill(p)) hit = document.elementFromPoint(x, y);
      }}
      document.body.dataset.fill = getComputedStyle(path).fill;
      document.body.dataset.hit = hit ? (hit.getAttribute('data-stadtteil') || hit.tagName) : '';
    </script></body>"""
    probed = tmp_path / "lage.html"
    probed.write_text(text.replace("</body>", probe), encoding="utf-8")
    done = chromium("--enable-logging=stderr", "--v=0", "--window-size=1300,2000",
                    "--dump-dom", probed.as_uri(), tmp=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert ":CONSOLE" not in done.stderr, done.stderr[-2000:]
    assert f'data-fill="{MARKANT_FILL}"' in done.stdout
    assert f'data-hit="{code}"' in done.stdout
    # The same in words: the table row of the Stadtteil names its level.
    row = text.split(f'data-topic="starkregen" data-id="{code}">', 1)[1].split("</tr>", 1)[0]
    assert ">markant<" in row and station["stadtteil"] in row


def test_each_crossing_reaches_the_alert_channel_once(runs):
    sent_first, sent = runs["sent_first"], runs["sent"]
    texts = [m["text"] for m in sent_first]
    assert any("markant an der Station Dresden-Klotzsche" in t for t in texts)
    assert any("Unwetter an der Station Dresden-Klotzsche" in t for t in texts)
    assert any("markant an der Station Dresden-Hosterwitz" in t for t in texts)
    assert len(texts) == len(set(texts))
    assert len(sent) == len(sent_first)  # the second run sent nothing again


def test_a_second_run_writes_nothing_to_ckan(runs):
    again = runs["again"]
    assert again.returncode == 0, again.stdout + again.stderr
    (report,) = cli_reports(again)
    assert report["write_calls"] == 0, report
    log = (runs["tmp"] / "state" / "logs" / "odp.log").read_text(encoding="utf-8")
    steps = [json.loads(line)["message"] for line in log.splitlines()
             if '"event": "situation"' in line]
    assert len(steps) == 2 and steps[0].endswith("page and CAP feed: 2 CKAN writes"), steps
    assert steps[1].endswith("page and CAP feed: 0 CKAN writes"), steps
