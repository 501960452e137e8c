"""The situation dataset's inputs as `pipelines/situation-dresden.toml` configures them, read
from CONSTRUCTED published tables (ledgers in the shape of heavy-rain-dresden-windows and
heavy-rain-dresden-stadtteile): a per-Stadtteil input plugs in by configuration and wins over
the nearest-station rule, an input not yet published is left out, none published is an error."""

from __future__ import annotations

import pandas as pd
import pytest

from odp.errors import SourceError
from odp.sources.situation import situation_rows
from odp.spec import load_city, load_dataset
from tests.helpers import REPO
from tests.unit.test_situation_indicators import HOSTERWITZ, KLOTZSCHE, windows

SITUATION = "situation-dresden"


def publish(state, name: str, frame: pd.DataFrame) -> None:
    folder = state / "published"
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / f"{name}.parquet", index=False)


def stadtteile(code: str, level: int, name: str) -> pd.DataFrame:
    return pd.DataFrame({
        "stadtteil_nr": [code], "stadtteil": [name], "resolution": ["10min"],
        "timestamp": pd.to_datetime(["2024-11-20T14:20Z"]), "stations": ["01048"],
        "sum_1h": [27.0], "level": pd.array([level], dtype="Int64"),
        "level_name": ["Unwetter"]})


def test_a_per_stadtteil_input_wins_over_the_nearest_station_and_others_keep_it(tmp_path):
    city, dataset = load_city(REPO), load_dataset(SITUATION, REPO)
    publish(tmp_path, "heavy-rain-dresden-windows", pd.concat([
        windows("01048", [0, 0, 0], KLOTZSCHE), windows("01050", [0, 2, 2], HOSTERWITZ)]))
    publish(tmp_path, "heavy-rain-dresden-stadtteile", stadtteile("31", 3, "Klotzsche"))
    rows = situation_rows(dataset, tmp_path, city)
    parts = rows[rows["feature"] == "stadtteil"].set_index("name")
    assert len(parts) == 64 and not parts.index.duplicated().any()
    klotzsche = parts.loc["Klotzsche"]
    assert (klotzsche["feature_id"], klotzsche["level"], klotzsche["value"]) == ("31", 3, 27.0)
    assert pd.isna(klotzsche["from_station"]) and "heavy-rain-dresden-stadtteile" in str(
        klotzsche["input"])
    assert 51.08 < klotzsche["latitude"] < 51.18  # a point inside Klotzsche, for the map
    pillnitz = parts.loc["Hosterwitz/Pillnitz"]
    assert (pillnitz["from_station"], pillnitz["level_name"]) == ("01050", "markant")
    assert set(rows.loc[rows["feature"] == "station", "feature_id"]) == {"01048", "01050"}
    assert "hochwasser" not in set(rows["topic"])  # flood-alarm-levels-saxony: not published


def test_no_input_published_is_a_source_error_naming_them(tmp_path):
    with pytest.raises(SourceError) as caught:
        situation_rows(load_dataset(SITUATION, REPO), tmp_path, load_city(REPO))
    assert str(caught.value).startswith(
        "situation-dresden: no input published yet (heavy-rain-dresden-windows, "
        "heavy-rain-dresden-stadtteile, flood-alarm-levels-saxony;")
