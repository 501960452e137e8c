"""`odp portal check`: the dataset fields it asks a portal's schema for are exactly those the
publisher writes beyond CKAN's core fields, and the project's own dataset schema declares them.
(The checks against a portal: tests/integration/test_portal.py.)"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from odp.portal_check import MIN_CKAN, SCHEMA_FIELDS, _ckan, _version
from odp.publish.metadata import package_dict
from odp.spec import load_city, load_dataset
from odp_dev.portal import settings
from tests.helpers import make_project

CKAN_CORE = {"name", "title", "notes", "owner_org", "license_id", "url", "author", "maintainer",
             "maintainer_email", "tags", "groups", "extras"}


def test_schema_fields_are_what_the_publisher_writes_beyond_ckans_core(tmp_path: Path) -> None:
    root, names = make_project(tmp_path, ["schools-dresden"])
    dataset = load_dataset(names["schools-dresden"], root)
    package = package_dict(dataset, load_city(root), pd.DataFrame())
    assert set(package) - CKAN_CORE == SCHEMA_FIELDS


def test_the_projects_dataset_schema_declares_every_schema_field() -> None:
    schema = yaml.safe_load((settings.CKANEXT_ODP / "ckanext" / "odp" / "dataset.yaml")
                            .read_text(encoding="utf-8"))
    declared = {f["field_name"] for f in schema["dataset_fields"]}
    assert declared >= SCHEMA_FIELDS


def test_ckan_versions_below_the_minimum_are_missing() -> None:
    assert _version("2.12.0") == (2, 12, 0) and _version("2.10.4b") == (2, 10, 4)
    assert _ckan({"ckan_version": "2.12.0"}).state == "ok"
    assert _ckan({"ckan_version": "2.9.11"}).state == "missing"
    assert MIN_CKAN == (2, 10)
