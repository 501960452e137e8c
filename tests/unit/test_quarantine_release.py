"""Releasing quarantined keys touches only the keys the quarantine holds open."""

from __future__ import annotations

import pandas as pd

from odp.validate import QuarantineStore

DATASET = "d"


def _quarantine(store: QuarantineStore, run_id: str, keys: list[str]) -> None:
    findings = pd.DataFrame({"row": range(1, len(keys) + 1), "key": keys, "field": "v",
                             "rule": "type:number", "value": "x", "reason": "'x' is not a number"})
    store.add(DATASET, run_id, findings, pd.DataFrame({"v": ["x"] * len(keys)}))


def test_release_of_many_published_keys_closes_only_the_open_ones_among_them(tmp_path):
    store = QuarantineStore(tmp_path)
    _quarantine(store, "run-1", ["id=1", "id=2", "id=3"])
    store.add("other", "run-1", pd.DataFrame({"row": [1], "key": ["id=2"], "field": "v",
                                              "rule": "r", "value": "x", "reason": "bad"}),
              pd.DataFrame({"v": ["x"]}))
    published = (f"id={i}" for i in range(2, 200_000))  # a large run: one pass, one statement
    assert store.release(DATASET, published, "run-2") == 2
    assert store.open_keys(DATASET) == {"id=1"}
    assert store.open_keys("other") == {"id=2"}  # another dataset's key of the same text stays
    history = store.history(DATASET).set_index("key")
    assert history.loc["id=2", "released_by"] == "run-2" and pd.isna(
        history.loc["id=1", "released_by"])
    # Already released: a second release finds nothing open, and keeps the first release.
    assert store.release(DATASET, ["id=2", "id=3"], "run-3") == 0
    assert store.history(DATASET).set_index("key").loc["id=3", "released_by"] == "run-2"


def test_release_with_nothing_quarantined_releases_nothing(tmp_path):
    store = QuarantineStore(tmp_path)
    assert store.release(DATASET, [f"id={i}" for i in range(1000)], "run-1") == 0
    assert store.history(DATASET).empty
