"""The deletion guard and the empty-table guard (odp.publish.guard): thresholds, the officer's
explicit acceptance, marked-deleted rows, and configuration errors naming file and key."""

from __future__ import annotations

import pandas as pd
import pytest

from odp.errors import ConfigError
from odp.publish.changes import DELETED_AT, diff
from odp.publish.guard import (
    GuardSettings,
    deletion_reasons,
    empty_reasons,
    guard_settings,
    published_rows,
)
from odp.spec import load_city, load_dataset
from tests.helpers import LEDGER_COLUMNS as COLUMNS
from tests.helpers import LEDGER_KEY as KEY
from tests.helpers import ledger_table, make_project


def _rows(n: int) -> pd.DataFrame:
    return ledger_table([(i, f"row {i}", "2024-01-01") for i in range(n)])


def _refresh(rows: pd.DataFrame, ledger: pd.DataFrame):
    return diff(rows, ledger, KEY, COLUMNS, True)


def test_deleting_more_than_the_share_is_held_back_with_the_numbers():
    ledger = _refresh(_rows(100), None).result
    changes = _refresh(_rows(80), ledger)
    (reason,) = deletion_reasons(changes, 100, GuardSettings(0.10), accept=False)
    assert reason.startswith("would delete 20 of 100 published rows (20.0%, limit 10.0%)")
    assert "--accept-deletes" in reason


def test_deleting_up_to_the_share_passes_and_acceptance_lifts_the_guard():
    ledger = _refresh(_rows(100), None).result
    assert deletion_reasons(_refresh(_rows(90), ledger), 100, GuardSettings(0.10), False) == []
    many = _refresh(_rows(10), ledger)
    assert deletion_reasons(many, 100, GuardSettings(0.10), accept=True) == []
    assert deletion_reasons(many, 100, GuardSettings(0.95), accept=False) == []


def test_an_empty_delivery_over_a_published_table_needs_may_be_empty():
    assert empty_reasons(0, 60, may_be_empty=False) == [
        "0 rows to publish over 60 published rows (set [validate] may_be_empty = true if the "
        "dataset may be empty)"]
    assert empty_reasons(0, 60, may_be_empty=True) == []
    assert empty_reasons(0, 0, may_be_empty=False) == []  # nothing published yet
    assert empty_reasons(5, 60, may_be_empty=False) == []


def test_rows_marked_deleted_do_not_count_as_published():
    table = _rows(4)
    table[DELETED_AT] = pd.to_datetime([None, None, "2024-02-01", None], utc=True)
    assert published_rows(table) == 3 and published_rows(None) == 0


def test_the_city_default_applies_and_a_dataset_overrides_it(tmp_path):
    root, names = make_project(tmp_path, ["transit-stops-vvo"])
    dataset = load_dataset(names["transit-stops-vvo"], root)
    city = load_city(root)
    assert guard_settings(dataset, city).max_delete_share == city.defaults.get(
        "max_delete_share", 0.10)
    path = root / "pipelines" / f"{names['transit-stops-vvo']}.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("[publish]\n", "[publish]\nmax_delete_share = 0.5\n"))
    assert guard_settings(load_dataset(dataset.name, root), city).max_delete_share == 0.5


@pytest.mark.parametrize(("line", "key"), [("max_delete_share = 1.5", "max_delete_share"),
                                           ('quarantined_rows = "drop"', "quarantined_rows")])
def test_a_bad_guard_setting_names_file_and_key(tmp_path, line, key):
    root, names = make_project(tmp_path, ["transit-stops-vvo"])
    path = root / "pipelines" / f"{names['transit-stops-vvo']}.toml"
    path.write_text(path.read_text(encoding="utf-8").replace("[publish]\n", f"[publish]\n{line}\n"))
    with pytest.raises(ConfigError) as error:
        guard_settings(load_dataset(names["transit-stops-vvo"], root), load_city(root))
    assert str(path) in str(error.value) and key in str(error.value)
