"""Every error has its class, its exit code and one line: a full disk (7), CKAN refusing what
was sent (8), a name taken on the portal (9); errors raised inside dlt are reduced to one line
with the detail in the log; credentials in a URL an error names are redacted."""

from __future__ import annotations

import errno
import sqlite3

import dlt
import pytest
from ckanapi.errors import ValidationError
from dlt.pipeline.exceptions import PipelineStepFailed

from odp.errors import (
    CkanValidationError,
    ConfigError,
    DiskFullError,
    GateError,
    LockedError,
    NameConflictError,
    OdpError,
    PublishError,
    SourceError,
    classified,
    disk_full,
)
from odp.extract import _one_line
from odp.publish.portal import _refusal, check_transport
from odp.spec import load_dataset
from tests.helpers import REPO


def test_each_error_class_has_its_own_exit_code():
    classes = [OdpError, ConfigError, SourceError, GateError, PublishError, LockedError,
               DiskFullError, CkanValidationError, NameConflictError]
    assert [c.exit_code for c in classes] == [1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_an_error_naming_a_url_shows_it_without_its_credentials():
    error = SourceError("stops: https://u:PW123456@h.example/x.csv?access_token=T0K3N answered "
                        "HTTP 500")
    assert str(error) == "stops: https://***@h.example/x.csv?access_token=*** answered HTTP 500"


def test_no_space_left_anywhere_in_a_chain_is_disk_full_with_its_own_code():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "/state/staging/x.duckdb")
        except OSError as exc:
            raise RuntimeError("writing the CSV failed") from exc
    except RuntimeError as exc:
        found = disk_full(exc, "stops")
    assert isinstance(found, DiskFullError) and found.exit_code == 7
    assert str(found).startswith("stops: disk full writing /state/staging/x.duckdb: free space")
    assert "\n" not in str(found)


def test_sqlites_database_or_disk_is_full_is_disk_full():
    assert disk_full(sqlite3.OperationalError("database or disk is full")) is not None
    assert disk_full(OSError(errno.EACCES, "Permission denied")) is None


def test_classified_turns_a_full_disk_into_its_error_and_lets_others_pass():
    with pytest.raises(DiskFullError, match="^stops: disk full"), classified("stops"):
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(KeyError), classified("stops"):
        raise KeyError("x")
    with pytest.raises(GateError), classified("stops"):
        raise GateError("held back")


def _failed_step(tmp_path, error: Exception) -> PipelineStepFailed:
    @dlt.resource(name="rows")
    def rows():
        yield {"a": 1}
        raise error

    pipeline = dlt.pipeline("odp_errors_test", pipelines_dir=str(tmp_path / "dlt"),
                            destination=dlt.destinations.duckdb(str(tmp_path / "x.duckdb")))
    with pytest.raises(PipelineStepFailed) as failed:
        pipeline.run(rows())
    return failed.value


def test_an_error_inside_dlt_is_one_line_naming_its_cause_with_the_detail_in_the_log(
        tmp_path, odp_log):
    dataset = load_dataset("transit-stops-vvo", REPO)
    exc = _failed_step(tmp_path, ValueError("boolean value of NA is ambiguous\nline two\nthree"))
    assert len(str(exc).splitlines()) > 1  # what dlt says
    error = _one_line(exc, dataset)
    assert isinstance(error, SourceError) and "\n" not in str(error)
    assert str(error) == ("transit-stops-vvo: extract failed in step 'extract': ValueError: "
                          "boolean value of NA is ambiguous (details in the log)")
    assert "line two" in odp_log.text


def test_a_full_disk_inside_dlt_is_disk_full(tmp_path):
    dataset = load_dataset("transit-stops-vvo", REPO)
    exc = _failed_step(tmp_path, OSError(errno.ENOSPC, "No space left on device"))
    error = _one_line(exc, dataset)
    assert isinstance(error, DiskFullError)
    assert str(error).startswith("transit-stops-vvo: extract: disk full")


@pytest.mark.parametrize("words", ["That URL is already in use.",
                                   "Diese URL ist bereits vergeben."])
def test_a_taken_name_is_a_name_conflict_and_still_ckans_validation_error(words):
    refused = ValidationError({"name": [words], "__type": "Validation Error"})
    error = _refusal("package_create", {"name": "schools-dresden"}, refused)
    assert isinstance(error, NameConflictError) and isinstance(error, ValidationError)
    assert error.exit_code == 9 and error.error_dict["name"]
    assert str(error).startswith(f"CKAN refused 'package_create' for schools-dresden: name: "
                                 f"{words} (the name is taken")


def test_another_refusal_is_a_validation_error_naming_each_field_on_one_line():
    refused = ValidationError({"title": ["Missing value"], "url": ["Bad\nURL"]})
    error = _refusal("package_patch", {"id": "abc"}, refused)
    assert type(error).__mro__[1] is CkanValidationError and error.exit_code == 8
    assert str(error) == ("CKAN refused 'package_patch' for abc: title: Missing value; "
                          "url: Bad URL")


@pytest.mark.parametrize("url", ["https://opendata.example.org", "http://127.0.0.1:5050",
                                 "http://localhost:5000"])
def test_https_and_this_machine_are_accepted_as_portal_urls(url):
    check_transport(url, allow_http=False)


def test_plain_http_to_a_remote_portal_is_refused_unless_overridden_with_a_warning(odp_log):
    with pytest.raises(ConfigError, match="the API token would travel unencrypted"):
        check_transport("http://opendata.example.org", allow_http=False)
    check_transport("http://opendata.example.org", allow_http=True)
    assert "plain http://" in odp_log.text
