"""When a dataset is due: its `[schedule]` (a cron expression or an interval, in a time zone).

A cron expression is read in the schedule's time zone (default: the city's, Europe/Berlin) with
Debian cron's rules across DST changes: a time skipped in March runs at the first valid minute
after it, a fixed time repeated in October runs once, a wildcard-hour job runs in both hours.
All instants returned are UTC (aware datetimes in one zone compare without `fold`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from odp.errors import ConfigError

_SHORT = re.compile(r"^(\d+)\s*(s|m|min|h|d|w)$")
_ISO = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
# An interval run started by a per-minute cron may come up to this much early.
TOLERANCE = timedelta(seconds=60)


def parse_interval(text: str, where: str) -> timedelta:
    """'15m', '2h', '1d', '1w' or an ISO 8601 duration ('PT15M', 'P1D')."""
    value = text.strip()
    if m := _SHORT.match(value.lower()):
        seconds = int(m.group(1)) * _UNITS[m.group(2)]
    elif (m := _ISO.match(value.upper())) and value.upper() not in ("P", "PT"):
        w, d, h, mi, s = (int(g or 0) for g in m.groups())
        seconds = (((w * 7 + d) * 24 + h) * 60 + mi) * 60 + s
    else:
        raise ConfigError(f"{where}: interval '{text}' is not like '15m', '2h', '1d' or 'PT15M'")
    if seconds <= 0:
        raise ConfigError(f"{where}: interval '{text}' must be positive")
    return timedelta(seconds=seconds)


def _utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("naive datetime: pass an aware one")
    return t.astimezone(UTC)


@dataclass(frozen=True)
class Schedule:
    cron: str | None
    interval: timedelta | None
    timezone: ZoneInfo
    stale_after: timedelta | None = None  # explicit staleness limit; default two intervals

    @classmethod
    def parse(cls, table: dict[str, object], default_tz: str, where: str) -> Schedule:
        cron = str(table["cron"]).strip() if table.get("cron") else None
        interval_text = table.get("interval")
        if cron and interval_text:
            raise ConfigError(f"{where}: [schedule] has both cron and interval; keep one")
        tz_name = str(table.get("timezone") or default_tz)
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"{where}: [schedule] timezone '{tz_name}' is unknown") from None
        if cron:
            from cronsim import CronSim, CronSimError

            try:
                CronSim(cron, datetime.now(tz))
            except CronSimError as exc:
                raise ConfigError(f"{where}: [schedule] cron '{cron}': {exc}") from None
        interval = parse_interval(str(interval_text), where) if interval_text else None
        stale = table.get("stale_after")
        stale_after = parse_interval(str(stale), where) if stale else None
        return cls(cron, interval, tz, stale_after)

    @property
    def defined(self) -> bool:
        return bool(self.cron or self.interval)

    def describe(self) -> str:
        if self.cron:
            return f"cron {self.cron} ({self.timezone.key})"
        if self.interval:
            return f"every {self.interval}"
        return "manual"

    def _iter(self, t: datetime, reverse: bool = False):  # type: ignore[no-untyped-def]
        from cronsim import CronSim

        local = _utc(t).astimezone(self.timezone)
        return CronSim(self.cron or "", local, reverse=reverse)

    def next_runs(self, after: datetime, count: int = 1,
                  last_start: datetime | None = None) -> list[datetime]:
        """The next `count` slots strictly after `after` (UTC)."""
        if self.cron:
            it = self._iter(after)
            return [_utc(next(it)) for _ in range(count)]
        if self.interval:
            first = max(_utc(after), _utc(last_start) + self.interval) if last_start else after
            return [_utc(first) + i * self.interval for i in range(count)]
        return []

    def previous_slot(self, now: datetime) -> datetime | None:
        """The latest cron slot at or before `now` (UTC); None for intervals."""
        if not self.cron:
            return None
        # CronSim in reverse yields slots strictly before its start: start one second later.
        start = _utc(now).replace(microsecond=0) + timedelta(seconds=1)
        return _utc(next(self._iter(start, reverse=True)))

    def is_due(self, now: datetime, last_start: datetime | None) -> bool:
        """Due when no run started since the latest slot (cron) or for an interval (interval)."""
        if not self.defined:
            return False
        if last_start is None:
            return True
        if self.cron:
            slot = self.previous_slot(now)
            return slot is not None and _utc(last_start) < slot
        assert self.interval is not None
        return _utc(now) - _utc(last_start) >= self.interval - min(TOLERANCE, self.interval / 10)

    def expected_interval(self, now: datetime) -> timedelta | None:
        """How often new data is expected around `now`: the gap between the cron slots around it
        (a weekly job: 7 days), or the interval."""
        if self.interval:
            return self.interval
        if not self.cron:
            return None
        slot = self.previous_slot(now)
        assert slot is not None
        return self.next_runs(slot)[0] - slot

    def stale_limit(self, now: datetime) -> timedelta | None:
        """Data older than this is stale: `stale_after`, else two expected intervals."""
        if self.stale_after:
            return self.stale_after
        expected = self.expected_interval(now)
        return 2 * expected if expected else None


def dataset_schedule(dataset, city_timezone: str) -> Schedule:  # type: ignore[no-untyped-def]
    """The schedule of a loaded `odp.spec.Dataset`."""
    return Schedule.parse(dataset.schedule, city_timezone, str(dataset.definition_path))
