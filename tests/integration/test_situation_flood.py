"""A flood wave end to end through the situation on the real local CKAN: `odp run` of
elbe-gauges-saxony (replayed, scenario 2024-11-22) with the CONSTRUCTED flood wave at DRESDEN of
tests/integration/test_derived_flood.py (380 cm rising 2.5 cm per 15 minutes to 520 cm, then
falling to 420 cm), then flood-alarm-levels-saxony, then situation-dresden: the gauge's row in
the situation table, its marker on the situation page and its alarm-level crossings in the CAP
feed (validated against OASIS's XSD). The heavy-rain and air-quality inputs are not run: left
out, as a city without them would see."""

from __future__ import annotations

import pytest

from odp_dev.replay import ReplayServer
from tests.helpers import all_rows, cli_env, cli_reports, make_project, odp_cli
from tests.integration.test_derived_flood import recordings_with_flood
from tests.integration.test_situation_end_to_end import (
    CAP,
    CAP_XSD,
    attachment,
    cap_alerts,
    download,
)

pytestmark = pytest.mark.integration

GAUGES, LEVELS, SITUATION = "elbe-gauges-saxony", "flood-alarm-levels-saxony", "situation-dresden"


@pytest.fixture(scope="module")
def runs(portal, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("situation-flood")
    root, names = make_project(tmp, [GAUGES, LEVELS, SITUATION])
    with ReplayServer(recordings_with_flood(tmp), scenario="2024-11-22") as replay:
        env = cli_env(root, tmp / "state", replay.url, portal)
        env.update({"ODP_ALERT_WEBHOOK_URL": "", "ODP_SMTP_HOST": ""})
        done = odp_cli(env, "run", names[SITUATION], names[LEVELS], names[GAUGES], "--json")
    return names, done


def test_the_situation_table_holds_the_gauge_at_its_alarm_level(runs, ckan):
    names, done = runs
    assert done.returncode == 0, done.stdout + done.stderr
    assert [r["status"] for r in cli_reports(done)] == ["ok", "ok", "ok"]  # in run order
    rows = {(r["feature"], r["feature_id"]): r for r in all_rows(ckan, names[SITUATION])}
    dresden = rows[("gauge", "501060")]
    # the wave's last step, i = 96: 08:00+01:00 + 24 h = 2024-11-22T07:00Z, 520 − 2.5 · 40 =
    # 420 cm ≥ 400 cm (Alarmstufe 1), < 500 cm
    assert dresden["timestamp"][:16] == "2024-11-22T07:00"
    assert (dresden["topic"], dresden["value"], dresden["unit"]) == ("hochwasser", 420.0, "cm")
    assert (dresden["level"], dresden["level_name"], dresden["warning"]) == (
        1, "Alarmstufe 1", True)
    assert rows[("gauge", "501010")]["level"] == 0  # Schöna, recorded: far below 400 cm
    assert {r["topic"] for r in rows.values()} == {"hochwasser"}  # other inputs left out


def test_the_situation_page_marks_the_gauge_with_its_alarm_level(runs, ckan, portal):
    names, _ = runs
    page = download(attachment(ckan, names[SITUATION], "situation-page"), portal).decode()
    marker = page.split('data-feature="gauge" data-id="501060"', 1)[1].split("</g>", 1)[0]
    assert 'data-level="1"' in marker and ">DRESDEN: Alarmstufe 1</text>" in marker
    assert 'data-id="501010"' not in page.split('<svg class="map"', 1)[1].split("</svg>")[0]
    row = page.split('data-topic="hochwasser" data-id="501060">', 1)[1].split("</tr>", 1)[0]
    assert "Pegel" in row and "420,0 cm" in row and ">Alarmstufe 1<" in row


def test_each_alarm_level_crossing_of_the_wave_is_a_valid_cap_alert_for_the_city(
        runs, ckan, portal):
    import xml.etree.ElementTree as ET

    import xmlschema

    names, _ = runs
    alerts = cap_alerts(download(attachment(ckan, names[SITUATION], "cap-feed"), portal))
    schema = xmlschema.XMLSchema(str(CAP_XSD))
    for alert in alerts:
        schema.validate(ET.tostring(alert, encoding="unicode"))
    found = sorted((a.findtext(f"{CAP}sent"), a.findtext(f"{CAP}msgType"),
                    a.findtext(f"{CAP}info/{CAP}headline"),
                    a.findtext(f"{CAP}info/{CAP}severity")) for a in alerts)
    # the hand-checked crossings of test_derived_flood.py, in local time (+01:00): 09:00Z
    # 400 cm up to 1; 19:00Z 500 cm up to 2; 01:00Z 480 cm down to 1 (the held level: 4
    # readings below 490 cm) — no Cancel: the wave ends at 420 cm, still Alarmstufe 1
    assert found == [
        ("2024-11-21T10:00:00+01:00", "Alert", "Hochwasser: Alarmstufe 1 am Pegel DRESDEN",
         "Minor"),
        ("2024-11-21T20:00:00+01:00", "Update", "Hochwasser: Alarmstufe 2 am Pegel DRESDEN",
         "Moderate"),
        ("2024-11-22T02:00:00+01:00", "Update", "Hochwasser: Alarmstufe 1 am Pegel DRESDEN",
         "Minor")]
    first = next(a for a in alerts if a.findtext(f"{CAP}msgType") == "Alert")
    assert len(list(first.iter(f"{CAP}area"))) == 64  # the Elbe's level: the whole city
