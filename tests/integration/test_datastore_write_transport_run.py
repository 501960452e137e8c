"""`odp run` with the DataStore's write database on another machine without TLS
(ODP_DATASTORE_WRITE_URL without sslmode=require) stops with exit 2 and one line naming the
variable and the host, before anything is written to the portal; the password is in no output
and no file of the state."""

from __future__ import annotations

import pytest

from odp_dev.replay import ReplayServer
from tests.helpers import RECORDINGS, cli_env, make_project, odp_cli

pytestmark = pytest.mark.integration

PASSWORD = "DbS3cretPW"


def test_a_remote_write_database_without_tls_stops_the_run_before_any_write(tmp_path, portal,
                                                                              ckan):
    import ckanapi

    root, names = make_project(tmp_path, ["transit-stops-vvo"])
    name, state = names["transit-stops-vvo"], tmp_path / "state"
    with ReplayServer(RECORDINGS) as replay:
        env = cli_env(root, state, replay.url, portal)
        env["ODP_DATASTORE_WRITE_URL"] = f"postgresql://ckan:{PASSWORD}@db.city.example/datastore"
        env.pop("PGSSLMODE", None)
        done = odp_cli(env, "run", name)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert (f"{name}: FAILED — DataStore write URL from ODP_DATASTORE_WRITE_URL: the database "
            "at db.city.example is reached with sslmode=prefer, so its password") in out, out
    assert "resource CSV: upload" not in out  # stopped before the first write
    assert PASSWORD not in out
    for file in state.rglob("*"):
        assert not file.is_file() or PASSWORD.encode() not in file.read_bytes(), file
    with pytest.raises(ckanapi.NotFound):
        ckan.action.package_show(id=name)
