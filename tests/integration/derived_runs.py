"""Shared steps of the end-to-end tests of derived datasets (indicators): pipeline files that
read the session's names of their inputs, constructed DWD 10-minute archives added to the
recordings, and the checks every derived dataset passes (a second run writes nothing to CKAN,
its DCAT-AP.de has no violations of GovData's SHACL profiles)."""

from __future__ import annotations

import json
import subprocess
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from odp_dev.portal.stack import PortalInfo
from tests.dcat_shacl import PROFILES, dataset_violations
from tests.helpers import cli_reports

DWD_10MIN = ("https://opendata.dwd.de/climate_environment/CDC/observations_germany/climate/"
             "10_minutes/precipitation/recent/10minutenwerte_nieder_{station}_akt.zip")


def read_renamed_inputs(root: Path, names: dict[str, str], derived: Iterable[str],
                        inputs: Iterable[str]) -> None:
    """The pipeline files of the `derived` datasets read `inputs` under their session names."""
    inputs = list(inputs)
    for name in derived:
        path = root / "pipelines" / f"{names[name]}.toml"
        text = path.read_text()
        for source in inputs:
            text = text.replace(f"\n{source} =", f"\n{names[source]} =")
        path.write_text(text)


def add_ten_minute_archive(folder: Path, station: str, product: str, label: str,
                           note: str) -> None:
    """Adds to the DWD recordings in `folder` a CONSTRUCTED 10-minute archive of `station`
    (`product` as its data, the recorded station geography), served in scenario "heavy-rain"."""
    dwd = folder / "dwd"
    with zipfile.ZipFile(dwd / f"10min_{station}_first.zip") as recorded:
        geography = recorded.read(f"Metadaten_Geographie_{station}.txt")
    body = dwd / f"10min_{station}_{label}.zip"
    with zipfile.ZipFile(body, "w", zipfile.ZIP_DEFLATED) as archive:
        stamp = (2024, 11, 21, 8, 0, 0)
        archive.writestr(zipfile.ZipInfo(f"produkt_zehn_min_rr_20241120_20241121_{station}.txt",
                                         stamp), product.encode("iso-8859-1"))
        archive.writestr(zipfile.ZipInfo(f"Metadaten_Geographie_{station}.txt", stamp), geography)
    manifest = dwd / "recordings.json"
    entries = json.loads(manifest.read_text())
    entries.append({
        "request": {"method": "GET", "url": DWD_10MIN.format(station=station)},
        "response": {"status": 200, "body_file": body.name, "headers": {
            "Content-Type": "application/zip", "ETag": f'"{body.stat().st_size:x}-{label}"',
            "Last-Modified": "Thu, 21 Nov 2024 08:04:12 GMT"}},
        "scenario": "heavy-rain",
        "note": note,
    })
    manifest.write_text(json.dumps(entries, indent=2))


def assert_unchanged_with_no_ckan_writes(again: subprocess.CompletedProcess) -> None:
    assert again.returncode == 0, again.stdout + again.stderr
    for report in cli_reports(again):
        assert (report["status"], report["write_calls"]) == ("unchanged", 0), report


def assert_no_dcat_violations(portal: PortalInfo, *names: str) -> None:
    for name in names:
        found = dataset_violations(portal.url, name, portal.token())
        assert found == {p: [] for p in PROFILES}, (name, found)


def published_rows(ckan: Any, name: str, **filters: Any) -> list[dict]:
    """The rows of the dataset's DataStore table matching `filters` (at most 1000)."""
    from tests.helpers import table_resource

    found = ckan.action.datastore_search(resource_id=table_resource(ckan, name)["id"],
                                         filters=filters, limit=1000)
    return found["records"]
