"""sensor.community: live area filter (constructed Dresden answer), the real 2017 data.json and
the real archive CSVs, against the replay server."""

from __future__ import annotations

import json
import tomllib

import pytest

from odp.errors import SourceError
from odp.extract import extract
from odp.sources.sensor_community import live_frame
from odp.spec import load_dataset
from tests.helpers import RECORDINGS
from tests.unit.source_env import source_env

NAME = "air-sensors-dresden"
AREA = "https://data.sensor.community/airrohr/v1/filter/area=51.05,13.74,12"
MADAVI = "https://www.madavi.de/sensor/feinstaub-map-sds/data.json"
HERE = RECORDINGS / "sensor_community"


@pytest.fixture
def env(tmp_path, monkeypatch):
    yield from source_env(tmp_path, monkeypatch, [NAME])


def _dataset(env, **source):
    """The Dresden dataset, its [source] table changed by `source` (None deletes a key)."""
    name = env["names"][NAME]
    if source:
        path = env["root"] / "pipelines" / f"{name}.toml"
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        raw["source"].update(source)
        lines = [
            f"{k} = {json.dumps(v)}"
            for k, v in raw["source"].items()
            if v is not None and not isinstance(v, dict | list)
        ]
        lines += [
            f"{k} = {_toml(v)}" for k, v in raw["source"].items() if isinstance(v, dict | list)
        ]
        text = path.read_text(encoding="utf-8")
        head, _, rest = text.partition("[source]")
        tail = rest[rest.index("\n[extract]") :]
        path.write_text(head + "[source]\n" + "\n".join(lines) + "\n" + tail, encoding="utf-8")
    return load_dataset(name, env["root"])


def _toml(value) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def _null(value) -> bool:
    return value is None or value != value  # None or NaN as read back from staging


def test_live_area_one_row_per_sensor_and_time_with_nan_and_empty_as_null(env):
    table = extract(_dataset(env), env["state"]).table.set_index(["sensor_id", "timestamp"])
    assert len(table) == 16 and table.index.is_unique
    # Read by hand from area_dresden_first.json: sensor 71003 (SDS011) at 06:57:33 sent
    # P1 "16.30" and P2 "nan"; 71004 (DHT22) at 06:55:03 sent humidity "".
    row = table.loc[("71003", "2024-11-21T06:57:33Z")]
    assert row["pm10"] == "16.30" and _null(row["pm2_5"])
    dht = table.loc[("71004", "2024-11-21T06:55:03Z")]
    assert dht["temperature"] == "4.60" and _null(dht["humidity"])
    bme = table.loc[("71007", "2024-11-21T06:55:03Z")]
    assert bme["pressure"] == "100482.50" and bme["sensor_type"] == "BME280"
    assert _null(bme["pm10"])  # not measured: null, never 0


def test_second_snapshot_adds_only_newer_rows(env):
    ds = _dataset(env)
    assert extract(ds, env["state"]).new_rows == 16
    env["server"].scenario = "2024-11-22"
    again = extract(ds, env["state"])
    assert again.new_rows == 8 and len(again.table) == 24  # the repeated record is not new


def test_real_data_json_filtered_to_an_area(env):
    ds = _dataset(env, feed_url=MADAVI, area=[50.652, 12.215, 1])
    table = extract(ds, env["state"]).table.set_index(["sensor_id", "timestamp"])
    # Read by hand from the real feed: at 50.652,12.215 sensor 147 (SDS011) and 148 (DHT22),
    # five records each; 147 at 14:25:16 sent P1 "29.13", P2 "12.80"; 148 at 14:21:25
    # temperature "-1.40", humidity "85.70". Timestamps carry no offset: they are UTC.
    assert len(table) == 10 and set(table.index.get_level_values(0)) == {"147", "148"}
    sds = table.loc[("147", "2017-01-16T14:25:16Z")]
    assert (sds["pm10"], sds["pm2_5"], sds["sensor_type"]) == ("29.13", "12.80", "SDS011")
    dht = table.loc[("148", "2017-01-16T14:21:25Z")]
    assert (dht["temperature"], dht["humidity"]) == ("-1.40", "85.70")


def test_archive_csvs_by_day_skip_missing_days_and_resume(env):
    ds = _dataset(
        env,
        feed_url=None,
        archive_sensors=[{"id": 15092, "type": "sds011"}],
        archive_start="2019-01-07",
        archive_end="2019-01-08",
    )
    first = extract(ds, env["state"])
    lines = (HERE / "2019-01-08_sds011_sensor_15092.csv").read_text().splitlines()
    assert first.new_rows == len(lines) - 1  # 2019-01-07 answers 404: no file that day
    row = first.table.sort_values("timestamp").iloc[0]
    # first data line: 15092;SDS011;7647;56.963;-2.211;2019-01-08T00:01:48;6.03;;;1.20;;
    assert (row["timestamp"], row["pm10"], row["pm2_5"]) == ("2019-01-08T00:01:48Z", "6.03", "1.20")
    assert row["latitude"] == "56.963" and row["longitude"] == "-2.211"
    env["server"].clear_requests()
    assert extract(ds, env["state"]).new_rows == 0
    assert not [r for r in env["server"].requests if "archive" in r.url]  # days already read


def test_retry_after_429_then_success(env):
    env["server"].fail_next(AREA, [429], retry_after=1)
    assert extract(_dataset(env), env["state"]).new_rows == 16
    assert [r.status for r in env["server"].requests] == [429, 200]


def test_5xx_then_success(env):
    env["server"].fail_next(AREA, [500, 503])
    assert extract(_dataset(env), env["state"]).new_rows == 16


def test_malformed_record_is_named():
    with pytest.raises(SourceError, match=r"feed: record 2: malformed sensor record"):
        live_frame(
            [{"sensor": {"id": 1}, "timestamp": "2024-01-01 00:00:00"}, {"timestamp": "x"}],
            {"P1": "pm10"},
            "feed",
        )
    with pytest.raises(SourceError, match="expected a JSON list"):
        live_frame({"error": "busy"}, {}, "feed")


def test_malformed_body_fails_the_run_in_one_line(env):
    env["server"].override(AREA, 200, b"<html>maintenance</html>", "text/html")
    with pytest.raises(SourceError, match="answered an HTML page instead of JSON") as err:
        extract(_dataset(env), env["state"])
    assert "\n" not in str(err.value)
