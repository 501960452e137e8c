"""Every shipped dataset definition's `[source]` table fits its source type's typed parameters
(unknown, missing or mistyped keys would be a ConfigError at run time)."""

from __future__ import annotations

from pathlib import Path

import pytest

from odp.sources import make_resource
from odp.spec import dataset_city, load_dataset

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.stem for p in (REPO / "pipelines").glob("*.toml"))


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_source_table_fits_its_type(name: str, monkeypatch) -> None:
    definition = REPO / "pipelines" / f"{name}.toml"
    city = dataset_city(definition, "dresden")
    if city:
        monkeypatch.setenv("ODP_CITY", city)  # a Leipzig dataset is loaded as Leipzig serves it
    resource = make_resource(load_dataset(name, REPO))
    assert resource is not None
