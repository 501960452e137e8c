"""Schedules: due times in Europe/Berlin across the DST changes, intervals, staleness limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from odp.errors import ConfigError
from odp.operations.install import render, replace_block
from odp.operations.schedule import Schedule, parse_interval
from tests.helpers import REPO

BERLIN = ZoneInfo("Europe/Berlin")


def sched(**table: object) -> Schedule:
    return Schedule.parse(table, "Europe/Berlin", "pipelines/x.toml")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_daily_job_in_the_skipped_hour_runs_once_at_three_in_march():
    # 2025-03-30: clocks jump 02:00 CET → 03:00 CEST; 02:30 does not exist.
    s = sched(cron="30 2 * * *")
    runs = s.next_runs(datetime(2025, 3, 29, 12, tzinfo=BERLIN), 3)
    local = [t.astimezone(BERLIN).strftime("%m-%d %H:%M %Z") for t in runs]
    assert local == ["03-30 03:00 CEST", "03-31 02:30 CEST", "04-01 02:30 CEST"]
    assert runs[0] == utc(2025, 3, 30, 1, 0)


def test_daily_job_in_the_repeated_hour_runs_once_in_october():
    # 2025-10-26: 03:00 CEST → 02:00 CET; 02:30 happens twice, the job runs at the first.
    s = sched(cron="30 2 * * *")
    runs = s.next_runs(datetime(2025, 10, 25, 12, tzinfo=BERLIN), 3)
    assert runs == [utc(2025, 10, 26, 0, 30), utc(2025, 10, 27, 1, 30), utc(2025, 10, 28, 1, 30)]
    # Between the two 02:30s nothing is due again.
    assert not s.is_due(utc(2025, 10, 26, 1, 31), last_start=utc(2025, 10, 26, 0, 30, 5))


def test_quarter_hour_job_runs_in_both_repeated_hours_and_never_bunches():
    s = sched(cron="*/15 * * * *")
    start = utc(2025, 10, 26, 0, 0)  # 02:00 CEST
    runs = s.next_runs(start - timedelta(seconds=1), 9)
    gaps = {b - a for a, b in zip(runs, runs[1:], strict=False)}
    assert gaps == {timedelta(minutes=15)}  # 2 h of wall-clock 02:xx = 8 slots, evenly spaced
    assert runs[-1] == utc(2025, 10, 26, 2, 0)  # 03:00 CET
    # March: 01:45 CET → 03:00 CEST is 15 real minutes.
    march = s.next_runs(utc(2025, 3, 30, 0, 45), 2)
    assert march == [utc(2025, 3, 30, 1, 0), utc(2025, 3, 30, 1, 15)]


def test_weekly_job_keeps_local_time_across_the_change():
    s = sched(cron="0 5 * * 1")  # Mondays 05:00 Berlin
    runs = s.next_runs(utc(2025, 10, 20, 12, 0), 2)
    assert runs == [utc(2025, 10, 27, 4, 0), utc(2025, 11, 3, 4, 0)]
    assert s.expected_interval(utc(2025, 10, 28, 0, 0)) == timedelta(days=7)
    # The week over the change is one hour longer in real time.
    assert s.expected_interval(utc(2025, 10, 21, 0, 0)) == timedelta(days=7, hours=1)


def test_due_after_each_slot_once():
    s = sched(cron="*/15 * * * *")
    now = utc(2025, 1, 6, 10, 7)
    assert s.is_due(now, None)
    assert s.is_due(now, last_start=utc(2025, 1, 6, 9, 59))
    assert not s.is_due(now, last_start=utc(2025, 1, 6, 10, 0, 3))
    assert s.is_due(utc(2025, 1, 6, 10, 15), last_start=utc(2025, 1, 6, 10, 0, 3))


def test_interval_schedule_and_staleness_limit():
    s = sched(interval="15m")
    t = utc(2025, 1, 1, 12, 0)
    assert not s.is_due(t + timedelta(minutes=10), last_start=t)
    assert s.is_due(t + timedelta(minutes=15), last_start=t)
    assert s.stale_limit(t) == timedelta(minutes=30)
    assert sched(interval="PT1H", stale_after="3h").stale_limit(t) == timedelta(hours=3)
    assert parse_interval("P1W", "x") == timedelta(days=7)
    assert not sched().is_due(t, None)  # no schedule: runs only by hand


@pytest.mark.parametrize(("table", "message"), [
    ({"cron": "61 * * * *"}, "cron '61 * * * *'"),
    ({"cron": "* * * * *", "interval": "5m"}, "both cron and interval"),
    ({"interval": "soon"}, "interval 'soon'"),
    ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "timezone 'Mars/Olympus'"),
])
def test_bad_schedules_are_one_line_config_errors(table, message):
    with pytest.raises(ConfigError, match="pipelines/x.toml") as err:
        sched(**table)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_crontab_block_is_one_line_and_replaced_in_place():
    block = render(REPO, "cron", "/var/log/odp/cron.log")
    lines = [line for line in block.splitlines() if not line.startswith("#")]
    assert len(lines) == 1 and lines[0].startswith("* * * * * cd ")
    assert lines[0].endswith("odp run --due >> /var/log/odp/cron.log 2>&1")
    mine = "MAILTO=ops@example.org\n0 1 * * * backup\n"
    once = replace_block(mine, block, REPO)
    twice = replace_block(once, block.replace("cron.log", "odp.log"), REPO)
    assert once.startswith(mine) and twice.count("# BEGIN odp") == 1
    assert "odp.log" in twice and "0 1 * * * backup" in twice


def test_systemd_units_run_due_every_minute():
    text = render(REPO, "systemd")
    assert "[Timer]\nOnCalendar=*-*-* *:*:00" in text and "Type=oneshot" in text
    assert "odp run --due" in text and "WantedBy=timers.target" in text
