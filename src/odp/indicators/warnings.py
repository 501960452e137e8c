"""After a run of a `situation` dataset: the level crossings of its inputs as warnings — to the
city's alert channels (each once), into the public CAP 1.2 feed — and the situation page; the
feed and the page are published as resources of the situation dataset in CKAN, as the KPI
cockpit publishes its status page (an HTML upload), re-sent only when their content changed.

Deduplication: every crossing has a stable CAP identifier (`odp.indicators.cap.identifier`);
`STATE/warnings/NAME.sqlite` remembers each one sent (or skipped: older than `alert_max_age`
behind the newest data, or no channel configured), so a crossing is sent once however often
the data is read again; one the channels did not take is sent again at the next run.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from odp.indicators import cap as cap_
from odp.indicators.situation import Profile, Units, areas, crossings, latest, units_of
from odp.runs.alerts import Channels, Event
from odp.runs.logs import log
from odp.spec import Dataset

ATTACHMENT = "odp_attachment"  # resource extra naming these files (not `odp_role`: the sync of
# the dataset's own files retires resources with a role it does not know)
PAGE, FEED = "situation-page", "cap-feed"
RESULTS = ("ok", "unchanged")


class LevelAlert(Event):
    """A warning for the alert channels: the headline as its title."""

    @property
    def title(self) -> str:
        return f"[odp {self.city}] {self.incident}"


@dataclass
class Built:
    """What a situation dataset's warnings step produced."""

    warnings: list[cap_.Warning]
    feed: bytes
    page: str
    rows: pd.DataFrame
    sent: list[str] = field(default_factory=list)


def _published(state: Path, name: str) -> pd.DataFrame:
    path = state / "published" / f"{name}.parquet"
    if not path.exists():
        return pd.DataFrame()
    rows = pd.read_parquet(path)
    if "deleted_at" in rows:
        rows = rows[rows["deleted_at"].isna()]
    return rows


def level_names(profile: Profile, rows: pd.DataFrame) -> dict[int | None, str]:
    """The map legend: the levels the profile's rows name (and undetermined), lowest first."""
    found = rows[rows["topic"] == profile.topic][["level", "level_name"]].dropna()
    names: dict[int | None, str] = {int(r.level): str(r.level_name)
                                    for r in found.drop_duplicates("level").itertuples()}
    defaults = {0: f"kein {profile.title}", 2: "markant", 3: "Unwetter", 4: "extremes Unwetter"}
    if profile.topic == "starkregen":
        names = {**defaults, **names}
    ordered: dict[int | None, str] = dict(sorted(names.items()))
    ordered[None] = "unbestimmt (Werte fehlen)"
    return ordered


def warnings_for(dataset: Dataset, state: Path, city: Any, units: Units) -> list[cap_.Warning]:
    """Every level crossing of the published inputs, as CAP warnings (time order per series)."""
    from odp.sources.situation import Inputs, read_input, settings

    config = settings(dataset)
    parts, profiles, where = [], {}, {}
    for name, profile in Inputs.of(dataset).profiles.items():
        found = read_input(state, name, profile, dataset.name)
        if found is None or not profile.warnings:
            continue
        profiles[profile.name] = profile
        events = crossings(found[0], profile)
        if len(events):
            parts.append(events)
            for feature, codes in areas(profile, latest(found[0], profile, ""), units).items():
                where[(profile.name, feature)] = codes
    if not parts:
        return []
    events = pd.concat(parts, ignore_index=True)
    sender = str(config["sender"] or f"odp@{city.name}")
    return cap_.warnings_of(events, profiles, where, sender, dataset.name, city.timezone)


def in_feed(warnings: Sequence[cap_.Warning], newest: Any, days: float) -> list[cap_.Warning]:
    """The warnings of the last `days` days before the newest data."""
    if newest is None or pd.isna(newest):
        return list(warnings)
    since = pd.Timestamp(newest) - pd.Timedelta(days=days)
    return [w for w in warnings if pd.Timestamp(w.event["timestamp"]) >= since]


def build(dataset: Dataset, state: Path, city: Any, portal_url: str = "") -> Built:
    """The warnings, the CAP feed and the page of a situation dataset from its published
    table and its inputs' published tables."""
    from odp.indicators.page import render
    from odp.sources.situation import Inputs, settings

    config = settings(dataset)
    units = units_of(city)
    rows = _published(state, dataset.name)
    warnings = warnings_for(dataset, state, city, units)
    newest = rows["timestamp"].max() if len(rows) else None
    shown = in_feed(warnings, newest, float(config["feed_days"]))
    sender = str(config["sender"] or f"odp@{city.name}")
    url = f"{portal_url.rstrip('/')}/dataset/{dataset.name}"
    shapes = cap_.polygons(units, float(config["cap_tolerance_m"]))
    names = {str(c): str(n) for c, n in zip(units.codes, units.names, strict=True)}
    updated = (cap_.cap_time(newest, city.timezone) if newest is not None
               else "1970-01-01T00:00:00+00:00")
    feed = cap_.feed(shown, sender, {**config, "web": config["web"] or url}, shapes, names, url,
                     f"Warnungen: {dataset.title}", updated)
    profiles = list(Inputs.of(dataset).profiles.items())
    mapped = next((p for _, p in profiles if p.stadtteile or p.feature == "stadtteil"),
                  profiles[0][1])
    page = render(rows if len(rows) else _empty_rows(), units, title=dataset.title,
                  map_topic=mapped.topic, map_title=mapped.title,
                  levels=level_names(mapped, rows if len(rows) else _empty_rows()),
                  titles={p.topic: p.title for _, p in profiles},
                  inputs=", ".join(n for n, _ in profiles), warnings=shown,
                  zone=city.timezone, dataset_url=url)
    return Built(warnings, feed, page, rows)


def _empty_rows() -> pd.DataFrame:
    from odp.indicators.situation import empty

    rows = empty()
    rows["timestamp"] = pd.to_datetime(rows["timestamp"], utc=True)
    return rows


# --- alerts ---------------------------------------------------------------------------------


def _store(state: Path, name: str) -> sqlite3.Connection:
    folder = state / "warnings"
    folder.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(folder / f"{name}.sqlite", timeout=30)
    conn.execute("CREATE TABLE IF NOT EXISTS warnings (identifier TEXT PRIMARY KEY, "
                 "outcome TEXT NOT NULL, at TEXT NOT NULL)")
    return conn


def dispatch(state: Path, dataset: Dataset, warnings: Sequence[cap_.Warning], channels: Channels,
             newest: Any, max_age: str, enabled: bool = True) -> list[str]:
    """Send each crossing not yet sent to the alert channels; returns the identifiers sent."""
    oldest = (pd.Timestamp(newest) - pd.Timedelta(max_age)) if newest is not None else None
    sent: list[str] = []
    with _store(state, dataset.name) as conn:
        known = {r[0] for r in conn.execute("SELECT identifier FROM warnings")}
        for warning in warnings:
            if warning.identifier in known:
                continue
            outcome = _outcome(warning, channels, dataset, oldest, enabled)
            if outcome is None:
                continue  # not delivered: again at the next run
            conn.execute("INSERT INTO warnings VALUES (?, ?, ?)", (
                warning.identifier, outcome, datetime.now(UTC).isoformat(timespec="seconds")))
            if outcome == "sent":
                sent.append(warning.identifier)
    return sent


def _outcome(warning: cap_.Warning, channels: Channels, dataset: Dataset, oldest: Any,
             enabled: bool) -> str | None:
    if oldest is not None and pd.Timestamp(warning.event["timestamp"]) < oldest:
        return "too old"
    if not enabled or not channels.active:
        return "no channel"
    kind = "all-clear" if warning.msg_type == "Cancel" else "warning"
    event = LevelAlert(kind, dataset.name, warning.headline, warning.description,
                       warning.identifier, channels.city)
    return "sent" if channels.send(event) else None


# --- CKAN -----------------------------------------------------------------------------------


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:24]


def attach(portal: Any, package: dict[str, Any], kind: str, path: Path, name: str,
           fmt: str, mimetype: str, description: str) -> bool:
    """Upload a file as the dataset's resource `kind` unless the portal holds the same content
    (its `odp_hash`); returns whether anything was written."""
    found = [r for r in package.get("resources", []) if r.get(ATTACHMENT) == kind]
    content = digest(path.read_bytes())
    for extra in found[1:]:  # a create whose answer was lost and was sent again
        portal.call("resource_delete", id=extra["id"])
    if found and found[0].get("odp_hash") == content:
        return bool(found[1:])
    meta = {"name": name, "format": fmt, "mimetype": mimetype, "description": description,
            ATTACHMENT: kind, "odp_hash": content}
    if found:
        portal.call("resource_patch", upload=path, id=found[0]["id"], **meta)
    else:
        portal.call("resource_create", upload=path, package_id=package["id"], **meta)
    return True


def publish(dataset: Dataset, state: Path, city: Any, built: Built) -> int:
    """The page and the CAP feed as resources of the dataset; returns CKAN writes made."""
    from odp.publish.portal import Portal

    portal = Portal(city)
    package = portal.show("package_show", dataset.name)
    if package is None:
        return 0  # never published: nothing to attach to yet
    folder = state / "published" / dataset.name
    folder.mkdir(parents=True, exist_ok=True)
    page, feed = folder / "lage.html", folder / "warnungen-cap.xml"
    page.write_text(built.page, encoding="utf-8")
    feed.write_bytes(built.feed)
    before = portal.writes
    attach(portal, package, PAGE, page, "Lagekarte (HTML)", "HTML", "text/html",
           "Die aktuelle Lage als Karte der Stadtteile mit Legende und Tabelle (statische Seite, "
           "ohne Skripte und ohne Kartendienste aus dem Internet).")
    attach(portal, package, FEED, feed, "Warnungen (CAP 1.2)", "XML", "application/atom+xml",
           "Eintritt in und Verlassen von Warnstufen als Atom-Feed, je Ereignis eine Meldung "
           "im OASIS Common Alerting Protocol 1.2 (Gebiet: die Stadtteile als Polygone, WGS84).")
    return portal.writes - before


def after_run(dataset: Dataset, state: Path, city: Any) -> Built:
    """Warnings out, page and feed published, for a situation dataset that just ran."""
    from odp.sources.situation import settings

    config = settings(dataset)
    built = build(dataset, state, city, city.portal_url)
    newest = built.rows["timestamp"].max() if len(built.rows) else None
    built.sent = dispatch(state, dataset, built.warnings, Channels.from_city(city), newest,
                          str(config["alert_max_age"]), bool(config["alerts"]))
    writes = publish(dataset, state, city, built)
    log.info(f"{dataset.name}: {len(built.warnings)} level crossings, {len(built.sent)} alerts "
             f"sent, page and CAP feed: {writes} CKAN writes",
             extra={"dataset": dataset.name, "event": "situation"})
    return built


def after_runs(root: Path, city: Any, reports: Sequence[Any]) -> None:
    """The hook `odp run` calls: for each situation dataset that ran (published or unchanged),
    its warnings step; a failure is logged, never raised (the run itself succeeded)."""
    from odp.spec import load_dataset, state_dir

    for report in reports:
        if getattr(report, "status", "") not in RESULTS:
            continue
        try:
            dataset = load_dataset(report.dataset, root)
            if dataset.source.get("type") == "situation":
                after_run(dataset, state_dir(root), city)
        except Exception as exc:  # noqa: BLE001 — warnings never fail a run
            log.warning(f"{report.dataset}: situation page, CAP feed or alerts not updated: "
                        f"{exc}", extra={"dataset": report.dataset, "event": "situation"})
