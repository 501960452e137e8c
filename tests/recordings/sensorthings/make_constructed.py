"""Build the SensorThings recordings' manifest and the CONSTRUCTED pages (see README.md).

Deterministic: ``uv run python tests/recordings/sensorthings/make_constructed.py``.
Constructed pages follow the real pages' format exactly (same keys, links and value types).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASE = "https://toronto-bike-snapshot.sensorup.com/v1.0"
JSON = {"Content-Type": "application/json; charset=UTF-8"}


def obs(obs_id: int, time: datetime, result: str) -> dict:
    return {
        "@iot.id": obs_id,
        "@iot.selfLink": f"{BASE}/Observations({obs_id})",
        "phenomenonTime": time.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time.microsecond // 1000:03d}Z",
        "result": result,
        "resultTime": None,
        "Datastream@iot.navigationLink": f"{BASE}/Observations({obs_id})/Datastream",
        "FeatureOfInterest@iot.navigationLink": f"{BASE}/Observations({obs_id})/FeatureOfInterest",
    }


def series(first_id: int, start: datetime, count: int, step_min: int, result) -> list[dict]:
    return [
        obs(first_id - i, start - timedelta(minutes=step_min * i), result(i)) for i in range(count)
    ]


def dump(name: str, data: object) -> str:
    (HERE / name).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return name


def main() -> None:
    thing = json.loads((HERE / "things_page1.json").read_text())["value"][0]
    assert thing["@iot.id"] == 206047
    t = lambda *a: datetime(2017, 2, 16, *a, tzinfo=UTC)  # noqa: E731
    files = {
        "things_filtered": dump("things_filtered_206047.json", {"value": [thing]}),
        "ds51_page2": dump(
            "datastream_206051_observations_page2.json",
            {"value": series(1593000, t(13, 30, 10, 512000), 20, 5, lambda i: str(22 - i % 3))},
        ),
        "ds50": dump(
            "datastream_206050_observations.json",
            {"value": series(1595466, t(21, 55, 12, 101000), 30, 5, lambda i: str(i % 5))},
        ),
        "ds51_next": dump(
            "datastream_206051_observations_next.json",
            {
                "value": series(1596300, t(22, 10, 11, 7000), 3, 5, lambda i: str(20 + i))
                + series(1595467, t(21, 55, 12, 233000), 1, 5, lambda i: "23")
            },
        ),
        "ds50_next": dump(
            "datastream_206050_observations_next.json",
            {"value": series(1596301, t(22, 10, 11, 9000), 1, 5, lambda i: "4")},
        ),
    }

    def entry(
        path: str, body: str, note: str, query: dict | None = None, scenario: str | None = None
    ) -> dict:
        out = {
            "request": {"method": "GET", "url": f"{BASE}/{path}"},
            "response": {"status": 200, "headers": JSON, "body_file": body},
            "note": note,
        }
        if query:
            out["request"]["query"] = query
        if scenario:
            out["scenario"] = scenario
        return out

    manifest = [
        entry("", "service_root.json", "REAL service root"),
        entry("Things", "things_page1.json", "REAL first page of Things (nextLink $skip=100)"),
        entry(
            "Things",
            files["things_filtered"],
            "DERIVED: the REAL Thing 206047 as the only match of a $filter",
            {"$filter": "*"},
        ),
        entry(
            "Things(206047)/Locations",
            "location_206048.json",
            "REAL Location 206048 of "
            "Thing 206047 (body recorded at HistoricalLocations(206049)/Locations)",
        ),
        entry("Things(206047)/Datastreams", "thing_206047_datastreams.json", "REAL"),
        entry(
            "Datastreams(206051)/Observations",
            "datastream_206051_observations_page1.json",
            "REAL first page (100, nextLink $top=100&$skip=100)",
        ),
        entry(
            "Datastreams(206051)/Observations",
            files["ds51_page2"],
            "CONSTRUCTED last page (20 older observations, no nextLink)",
            {"$skip": "100"},
        ),
        entry("Datastreams(206050)/Observations", files["ds50"], "CONSTRUCTED single page"),
        entry(
            "Datastreams(206051)/Observations",
            files["ds51_next"],
            "CONSTRUCTED: 3 newer observations + 1 already seen",
            scenario="2024-11-22",
        ),
        entry(
            "Datastreams(206050)/Observations",
            files["ds50_next"],
            "CONSTRUCTED: 1 newer observation",
            scenario="2024-11-22",
        ),
    ]
    dump("recordings.json", manifest)


if __name__ == "__main__":
    main()
