"""Credentials in URLs and messages are replaced by `***` before anything leaves the process;
everything else in the text stays exactly as it was."""

from __future__ import annotations

import json
import logging
import time

import pytest

from odp.redact import MASK, redact_text, redact_url, sensitive_name
from odp.runs import alerts, history, logs
from odp.runs.record import record_run, redact_report

CREDENTIALS_URL = ("http://user:S3CRETPW@raw.githubusercontent.com/kiliankoe/vvo/stations.csv"
                   "?access_token=S3CRETTOKEN&sig=S3CRETSIG")


def test_userinfo_and_sensitive_parameters_of_a_url_are_masked():
    assert redact_url(CREDENTIALS_URL) == (
        "http://***@raw.githubusercontent.com/kiliankoe/vvo/stations.csv"
        "?access_token=***&sig=***")


def test_a_user_name_without_password_is_masked_too():
    assert redact_url("ftp://anonymous@ftp.example.org/pub/a.zip") == \
        "ftp://***@ftp.example.org/pub/a.zip"


@pytest.mark.parametrize("name", [
    "token", "access_token", "key", "apikey", "api_key", "apiKey", "API-KEY", "sig", "signature",
    "password", "passwd", "pwd", "secret", "client_secret", "auth", "authorization",
    "credential", "credentials", "session", "sessionid", "X-Amz-Signature", "X-Amz-Credential",
    "X-Amz-Security-Token", "x-goog-signature", "subscription-key", "refresh_token",
    "access%5Ftoken",
])
def test_each_sensitive_parameter_has_its_value_masked(name):
    url = f"https://data.example.org/api/v1/items.json?limit=10&{name}=Zm9vYmFy&page=2"
    assert redact_url(url) == f"https://data.example.org/api/v1/items.json?limit=10&{name}=***&page=2"


@pytest.mark.parametrize("name", ["format", "limit", "page", "keyword", "author", "authority",
                                  "bbox", "typenames", "sortby", "outputFormat", "monitor"])
def test_ordinary_parameters_are_left_alone(name):
    url = f"https://geo.example.org/wfs?service=WFS&{name}=value%20with%2Fslash"
    assert redact_url(url) == url
    assert not sensitive_name(name)


def test_url_encoded_values_are_masked_whole():
    url = "https://h.example.org/x?token=abc%2Fdef%3D%3D&sig=sv%3D2024%26sr%3Db&q=a%20b"
    assert redact_url(url) == "https://h.example.org/x?token=***&sig=***&q=a%20b"


def test_a_presigned_s3_url_keeps_everything_but_its_credentials():
    url = ("https://bucket.s3.eu-central-1.amazonaws.com/exports/stops.csv?X-Amz-Algorithm="
           "AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20240101%2Feu-central-1%2Fs3%2F"
           "aws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
           "&X-Amz-Signature=0123456789abcdef")
    assert redact_url(url) == (
        "https://bucket.s3.eu-central-1.amazonaws.com/exports/stops.csv?X-Amz-Algorithm="
        "AWS4-HMAC-SHA256&X-Amz-Credential=***&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600"
        "&X-Amz-SignedHeaders=host&X-Amz-Signature=***")


def test_a_token_in_the_fragment_is_masked_and_a_url_without_secrets_is_unchanged():
    assert redact_url("https://app.example.org/cb#access_token=abc&state=1") == \
        "https://app.example.org/cb#access_token=***&state=1"
    plain = "https://www.pegelonline.wsv.de/webservices/rest-api/v2/stations.json?includeTimeseries=true#top"
    assert redact_url(plain) == plain
    assert redact_url("") == ""


def test_a_replayed_url_with_userinfo_in_its_path_is_masked():
    url = "http://127.0.0.1:41234/user:S3CRETPW@raw.githubusercontent.com/x.csv?sig=S3CRETSIG"
    assert redact_url(url) == "http://127.0.0.1:41234/***@raw.githubusercontent.com/x.csv?sig=***"


def test_several_urls_in_one_line_are_each_redacted_and_the_rest_kept():
    line = (f"transit: {CREDENTIALS_URL} answered HTTP 500 (3 attempts); fallback "
            "https://mirror.example.org/s.csv?apikey=K3Y&format=csv, see https://docs.example.org/.")
    assert redact_text(line) == (
        "transit: http://***@raw.githubusercontent.com/kiliankoe/vvo/stations.csv"
        "?access_token=***&sig=*** answered HTTP 500 (3 attempts); fallback "
        "https://mirror.example.org/s.csv?apikey=***&format=csv, see https://docs.example.org/.")


def test_urls_in_quotes_and_brackets_keep_their_punctuation():
    text = "GET 'https://h.example.org/a?token=T1' failed (https://h.example.org/b?sig=S2)."
    assert redact_text(text) == \
        "GET 'https://h.example.org/a?token=***' failed (https://h.example.org/b?sig=***)."


def test_key_value_pairs_and_headers_in_free_text_are_masked():
    text = ('password=hunter2 api_key: abc123 {"client_secret": "xyz", "rows": 3} '
            "failed: Authorization: Bearer eyJhbGciOi.J9 token=***")
    assert redact_text(text) == ('password=*** api_key: *** {"client_secret": "***", "rows": 3} '
                                 "failed: Authorization: Bearer *** token=***")


def test_messages_without_secrets_are_unchanged():
    for text in [
        "row 3 (school_id=2040|building_no=1): field 'longitude': 'abc' is not a number",
        "quarantine key=stop_id=de:14612:28 rule=required; 3 of 1141 rows rejected (0.3%)",
        "elbe: HTTP 503 from https://www.pegelonline.wsv.de/webservices/rest-api/v2/x.json",
        "author: Landeshauptstadt Dresden, session-less run, time: 12:30:00",
        "no CKAN API token: set CKAN_API_TOKEN or CKAN_API_TOKEN_FILE",
        "", "no equals sign or colon at all",
    ]:
        assert redact_text(text) == text
    assert redact_text(None) is None  # type: ignore[arg-type]


def test_redaction_is_idempotent():
    once = redact_text(f"a {CREDENTIALS_URL} b password=x")
    assert redact_text(once) == once and "S3CRET" not in once and MASK in once


def test_redaction_is_fast_enough_for_every_log_line():
    line = f"dataset: {CREDENTIALS_URL} answered HTTP 500 (3 attempts), key=id=12 rows=1141 " * 3
    started = time.perf_counter()
    for _ in range(2000):
        redact_text(line)
    assert (time.perf_counter() - started) / 2000 < 0.001  # well under a millisecond a line


# --- the exit channels -----------------------------------------------------------------------


def _report(**changes):
    from odp.run import RunReport

    report = RunReport(run_id="20240101T000000Z-abcd", dataset="transit", status="failed",
                       started=history.now_iso(), exit_code=3,
                       error=f"transit: {CREDENTIALS_URL} answered HTTP 500",
                       url=CREDENTIALS_URL, messages=[f"warning: {CREDENTIALS_URL}"])
    for name, value in changes.items():
        setattr(report, name, value)
    return report


def test_a_report_is_redacted_in_place_before_it_is_recorded_or_printed():
    report = redact_report(_report())
    text = json.dumps(report.to_dict())
    assert "S3CRET" not in text and "access_token=***" in text and "http://***@raw" in text


def test_history_incident_log_and_alert_of_a_failed_run_hold_no_secret(tmp_path, monkeypatch):
    city = tmp_path / "city.toml"
    city.write_text('[alerts.webhook]\nurl_env = "ODP_TEST_HOOK"\nformat = "slack"\n')
    monkeypatch.setenv("ODP_TEST_HOOK", "http://127.0.0.1:9/hook")
    sent: list[alerts.Event] = []
    monkeypatch.setattr(alerts.Channels, "send", lambda self, event: sent.append(event) or True)
    logs.configure(tmp_path, console=False)
    try:
        report = _report()
        record_run(tmp_path, type("City", (), {"path": city, "name": "dresden"})(), report)
    finally:
        for handler in list(logs.log.handlers):
            logs.log.removeHandler(handler)
            handler.close()
    (row,) = history.runs(tmp_path, "transit")
    assert row["error"] == "transit: http://***@raw.githubusercontent.com/kiliankoe/vvo/" \
        "stations.csv?access_token=***&sig=*** answered HTTP 500"
    assert "S3CRET" not in row["url"]
    (incident,) = alerts.open_incidents(tmp_path)
    assert "S3CRET" not in incident["message"] and "access_token=***" in incident["message"]
    assert sent and all("S3CRET" not in json.dumps(e.to_dict()) for e in sent)
    assert "S3CRET" not in (tmp_path / "logs" / "odp.log").read_text()


def test_an_incident_stored_before_redaction_is_sent_redacted():
    event = alerts.Event("failed", "transit", "failed", f"HTTP 500 from {CREDENTIALS_URL}")
    assert "S3CRET" not in event.text() and "S3CRET" not in json.dumps(
        alerts.payload("generic", event))


def test_the_log_redacts_message_fields_and_traceback_on_file_and_console(tmp_path):
    import io

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream in (io.StringIO(), Tty()):
        logs.configure(tmp_path, stream=stream)
        try:
            try:
                raise RuntimeError(f"GET {CREDENTIALS_URL} failed")
            except RuntimeError:
                logs.log.exception("transit: %s", CREDENTIALS_URL,
                                   extra={"error": f"see {CREDENTIALS_URL}",
                                          "url": CREDENTIALS_URL})
        finally:
            for handler in list(logs.log.handlers):
                logs.log.removeHandler(handler)
                handler.close()
        console = stream.getvalue()
        assert "S3CRET" not in console and "access_token=***" in console
    written = (tmp_path / "logs" / "odp.log").read_text()
    assert "S3CRET" not in written
    entry = json.loads(written.splitlines()[0])
    assert entry["url"].startswith("http://***@") and "Traceback" in entry["traceback"]
    logging.getLogger("odp").handlers.clear()
