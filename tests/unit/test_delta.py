"""Which datasets may validate only new and changed rows (odp.delta)."""

from __future__ import annotations

import json
from dataclasses import replace

from odp.delta import _rules_allow
from odp.spec import load_dataset
from tests.helpers import REPO


def test_row_by_row_rules_of_a_full_refresh_allow_validating_only_changed_rows(tmp_path):
    stops = load_dataset("transit-stops-vvo", REPO)  # between, regex, unique on the key
    assert _rules_allow(stops) == ""
    suite = json.loads(stops.suite_path.read_text(encoding="utf-8"))
    for extra in ({"type": "expect_table_row_count_to_be_between",
                   "kwargs": {"min_value": 1000}},
                  {"type": "expect_column_mean_to_be_between",
                   "kwargs": {"column": "latitude", "min_value": 50, "max_value": 52}},
                  {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "name"}}):
        path = tmp_path / f"{extra['type']}.json"
        path.write_text(json.dumps({**suite, "expectations": [*suite["expectations"], extra]}))
        assert extra["type"] in _rules_allow(replace(stops, suite_path=path))


def test_incremental_and_series_datasets_validate_as_before():
    assert _rules_allow(load_dataset("elbe-water-level-dresden", REPO)) == "incremental"
    series = load_dataset("elbe-water-level-dresden", REPO)
    assert "series" in _rules_allow(replace(series, extract={**series.extract,
                                                              "mode": "full-refresh"}))
