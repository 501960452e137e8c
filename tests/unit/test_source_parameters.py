"""Every shipped dataset definition's `[source]` table fits its source type's typed parameters
(unknown, missing or mistyped keys would be a ConfigError at run time), and every source type
takes typed parameters."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from pathlib import Path

import pytest

from odp.errors import ConfigError
from odp.sources import SOURCE_TYPES, make_resource
from odp.spec import dataset_city, load_dataset

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.stem for p in (REPO / "pipelines").glob("*.toml"))


def _load(name: str, monkeypatch: pytest.MonkeyPatch):
    city = dataset_city(REPO / "pipelines" / f"{name}.toml", "dresden")
    if city:
        monkeypatch.setenv("ODP_CITY", city)  # a Leipzig dataset is loaded as Leipzig serves it
    return load_dataset(name, REPO)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_source_table_fits_its_type(name: str, monkeypatch) -> None:
    assert make_resource(_load(name, monkeypatch)) is not None


@pytest.mark.parametrize("name", SHIPPED)
def test_a_misspelt_key_in_a_shipped_source_table_is_refused_by_name(name: str,
                                                                      monkeypatch) -> None:
    dataset = _load(name, monkeypatch)
    misspelt = dataclasses.replace(dataset, source={**dataset.source, "stationz": "x"})
    with pytest.raises(ConfigError, match=rf"{name}\.toml: \[source\] unknown key 'stationz'"):
        make_resource(misspelt)


@pytest.mark.parametrize("kind", sorted(SOURCE_TYPES))
def test_every_source_type_takes_typed_keyword_parameters(kind: str) -> None:
    module, name = SOURCE_TYPES[kind].split(":")
    factory = getattr(importlib.import_module(module), name)
    params = inspect.signature(factory).parameters.values()
    keywords = [p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert keywords, f"{kind}: the factory reads dataset.source itself"
    assert all(p.annotation is not inspect.Parameter.empty for p in keywords)
    assert "Args:" in (factory.__doc__ or "")
