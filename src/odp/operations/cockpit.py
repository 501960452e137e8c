"""KPI cockpit: per dataset and day, from the run history — runs, share of rows passing
validation, georeferenced share, publish latency (duration of publishing runs), source uptime
(share of runs the source answered), freshness — as a CKAN dataset with a DataStore table,
and a static HTML status page (inline SVG charts of the last 30 days: no script, no CDN).

The page is German (`lang="de"`), as the portal is. The CKAN dataset goes through the same
metadata path as every published dataset (`odp.publish.metadata.package_dict`: DCAT-AP.de
fields, licence IRI, contributor ID, publisher, Table Schema of the KPI table).

Configured in the city file:

    [cockpit]
    dataset = "odp-kpi-cockpit"     # the CKAN dataset's name
    title = "…"
    days = 30
    update_each_run = true          # `odp run --due` / `--all` refresh it after the runs
    publish_page = true             # upload the status page as a resource too
    themes = ["GOVE"]               # EU data themes (dcat:theme), as in a dataset's [publish]
    frequency = "DAILY"             # dct:accrualPeriodicity: one KPI row per dataset and day
"""

from __future__ import annotations

import html
import tomllib
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from string import Template
from typing import Any
from zoneinfo import ZoneInfo

from odp.html_page import page
from odp.runs import history
from odp.spec import Dataset, TableSchema

TEMPLATES = Path(__file__).parent / "templates"
BODY, STYLE = TEMPLATES / "cockpit.html", TEMPLATES / "cockpit.css"  # in odp.html_page's frame
KPI_ROLE, PAGE_ROLE = "kpis", "status-page"
KPI_FIELDS = [
    ("dataset", "text", "Datensatz"),
    ("day", "date", "Tag (Zeitzone der Stadt)"),
    ("status", "text", "schlechtester Lauf des Tages: ok, held-back, failed"),
    ("runs", "int4", "Läufe"),
    ("runs_ok", "int4", "erfolgreiche Läufe"),
    ("runs_failed", "int4", "fehlgeschlagene Läufe"),
    ("runs_held_back", "int4", "zurückgehaltene Läufe"),
    ("share_valid", "float8", "Anteil gültiger Zeilen (0–1)"),
    ("georeferenced_share", "float8", "Anteil verorteter gültiger Zeilen (0–1)"),
    ("publish_latency_s", "float8", "mittlere Dauer veröffentlichender Läufe (s)"),
    ("source_uptime", "float8", "Anteil der Läufe, in denen die Quelle antwortete (0–1)"),
    ("freshness_h", "float8", "Alter der letzten erfolgreichen Aktualisierung am Tagesende (h)"),
]


# DataStore type -> Table Schema type of the KPI table's fields.
FRICTIONLESS_TYPES = {"text": "string", "date": "date", "int4": "integer", "float8": "number"}
NOTES = ("Kennzahlen der Open-Data-Pipelines ({city}) je Datensatz und Tag: Aktualität, Anteil "
         "gültiger und verorteter Zeilen, Veröffentlichungsdauer, Verfügbarkeit der Quellen. "
         "Wird nach jedem geplanten Lauf aktualisiert.")


@dataclass(frozen=True)
class CockpitConfig:
    dataset: str = ""
    title: str = "Open-Data-Cockpit"
    days: int = 30
    update_each_run: bool = True
    publish_page: bool = True
    themes: tuple[str, ...] = ("GOVE",)  # the pipelines' operation: public sector
    frequency: str = "DAILY"  # one KPI row per dataset and day

    @classmethod
    def from_city(cls, city: Any) -> CockpitConfig:
        with Path(city.path).open("rb") as fh:
            raw = tomllib.load(fh).get("cockpit", {})
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        if "themes" in known:
            known["themes"] = tuple(known["themes"])
        return cls(**known)


def kpi_schema(where: Path) -> TableSchema:
    """The KPI table as a Frictionless Table Schema (published like every dataset's)."""
    fields = [{"name": name, "type": FRICTIONLESS_TYPES[kind], "title": notes}
              for name, kind, notes in KPI_FIELDS]
    return TableSchema.from_dict({"fields": fields, "primaryKey": ["dataset", "day"]}, where)


def cockpit_dataset(city: Any, config: CockpitConfig) -> Dataset:
    """The cockpit as a dataset definition, so that its CKAN metadata comes from the same path
    as every dataset's: licence, attribution, contact and DCAT-AP.de facts from the city file's
    [defaults] and [dcat], publisher from its [organization]. Errors name [cockpit]."""
    where = Path(city.path)
    return Dataset(
        name=config.dataset, title=config.title or f"Open-Data-Cockpit {city.name}",
        description=NOTES.format(city=city.name), kind="register", source={"type": "cockpit"},
        extract={}, validate={}, georeference={},
        publish={"themes": list(config.themes), "frequency": config.frequency,
                 "tags": ["Open Data", "Kennzahlen"]},
        schedule={}, schema=kpi_schema(where), suite_path=where, definition_path=where,
    )  # fmt: skip


@dataclass
class DayKpi:
    dataset: str
    day: str
    status: str
    runs: int
    runs_ok: int
    runs_failed: int
    runs_held_back: int
    share_valid: float | None
    georeferenced_share: float | None
    publish_latency_s: float | None
    source_uptime: float | None
    freshness_h: float | None


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def daily_kpis(state: Path, names: list[str], tz: str, days: int = 30,
               now: datetime | None = None) -> list[DayKpi]:
    """One row per dataset and day of the last `days` days (days without runs included)."""
    zone = ZoneInfo(tz)
    now = now or datetime.now(UTC)
    today = now.astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, datetime.min.time(), zone)
    runs = [r for r in history.runs_since(state, start - timedelta(days=400))
            if r["status"] not in ("locked", "running")]
    out = []
    for name in names:
        mine = [r for r in runs if r["dataset"] == name]
        for offset in range(days):
            day = first + timedelta(days=offset)
            out.append(_day(name, day, zone, mine, now))
    return out


def _local_day(stamp: str, zone: ZoneInfo) -> date:
    return datetime.fromisoformat(stamp).astimezone(zone).date()


def _day(name: str, day: date, zone: ZoneInfo, runs: list[dict[str, Any]], now: datetime
         ) -> DayKpi:
    that = [r for r in runs if _local_day(r["started"], zone) == day]
    ok = [r for r in that if r["status"] in history.SUCCESS]
    failed = [r for r in that if r["status"] in ("failed", "killed")]
    held = [r for r in that if r["status"] == "held-back"]
    status = "failed" if failed else "held-back" if held else "ok" if ok else "none"
    publishing = [r["seconds"] for r in that if r["status"] == "ok"]
    end = min(now, datetime.combine(day + timedelta(days=1), datetime.min.time(), zone))
    successes = [history.parse_time(r["ended"] or r["started"]) for r in runs
                 if r["status"] in history.SUCCESS]
    before = [t for t in successes if t is not None and t <= end]
    return DayKpi(
        dataset=name, day=day.isoformat(), status=status, runs=len(that), runs_ok=len(ok),
        runs_failed=len(failed), runs_held_back=len(held),
        share_valid=_ratio(sum(r["valid"] for r in that), sum(r["validated"] for r in that)),
        georeferenced_share=_ratio(sum(r["georeferenced"] for r in ok),  # runs that got there
                                   sum(r["valid"] for r in ok)),
        publish_latency_s=round(sum(publishing) / len(publishing), 2) if publishing else None,
        source_uptime=_ratio(sum(1 for r in that if r["exit_code"] != 3), len(that)),
        freshness_h=round((end - max(before)).total_seconds() / 3600, 2) if before else None,
    )


# --- the static page ------------------------------------------------------------------------

COLORS = {"ok": "#2e7d32", "held-back": "#ef8f00", "failed": "#c62828", "none": "#d0d0d0",
          "stale": "#8e24aa", "never run": "#757575", "running": "#1565c0", "killed": "#c62828"}
# What the page shows for each state (the state itself stays in class names and data).
LABELS = {"ok": "ok", "held-back": "zurückgehalten", "failed": "fehlgeschlagen",
          "none": "kein Lauf", "stale": "veraltet", "never run": "nie gelaufen",
          "running": "läuft", "killed": "abgebrochen"}


def _de(text: str) -> str:
    """German decimal comma: 99.5 % -> 99,5 %."""
    return text.replace(".", ",")


def _bars(values: list[tuple[str, float | None, str]], top: float, label: str, unit: str
          ) -> str:
    """An inline SVG bar chart: one bar per day, coloured by that day's status."""
    width, height, gap = 300, 60, 1
    bar = width / max(len(values), 1)
    parts = [f'<svg class="chart" role="img" aria-label="{html.escape(label)}" '
             f'viewBox="0 0 {width} {height + 12}" width="{width}" height="{height + 12}" '
             'xmlns="http://www.w3.org/2000/svg">',
             f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="#999"/>']
    for i, (day, value, status) in enumerate(values):
        shown = 0.0 if value is None else max(0.0, min(value / top if top else 0, 1.0))
        h = max(shown * height, 2.0)
        shown_value = "—" if value is None else _de(f"{value:g}{unit}")
        text = f"{day}: {shown_value} ({LABELS.get(status, status)})"
        parts.append(f'<rect x="{i * bar:.1f}" y="{height - h:.1f}" width="{bar - gap:.1f}" '
                     f'height="{h:.1f}" fill="{COLORS.get(status, "#999")}">'
                     f'<title>{html.escape(text)}</title></rect>')
    if values:
        parts.append(f'<text x="0" y="{height + 11}" font-size="9">{values[0][0]}</text>')
        parts.append(f'<text x="{width}" y="{height + 11}" font-size="9" text-anchor="end">'
                     f'{values[-1][0]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _fmt(value: float | None, unit: str = "", scale: float = 1.0, digits: int = 1) -> str:
    return "—" if value is None else _de(f"{value * scale:.{digits}f}{unit}")


def render_page(title: str, city: str, statuses: list[Any], kpis: list[DayKpi],
                generated: datetime) -> str:
    by_dataset: dict[str, list[DayKpi]] = {}
    for k in kpis:
        by_dataset.setdefault(k.dataset, []).append(k)
    from odp.operations.status import human_age

    rows, cards = [], []
    for st in statuses:
        state = page_status(st)
        days = by_dataset.get(st.dataset, [])
        counted = [d for d in days if d.runs]
        uptime = _ratio(sum((d.source_uptime or 0) * d.runs for d in counted),
                        sum(d.runs for d in counted))
        name, label = html.escape(st.dataset), LABELS[state]
        rows.append(
            f'<tr data-dataset="{name}"><td class="name">{name}</td>'
            f'<td><span class="badge status-{state}" style="background:{COLORS[state]}">'
            f'{label}</span></td><td>{_when(st.last_success)}</td>'
            f'<td>{_de(human_age(st.age_seconds))} / {_de(human_age(st.expected_seconds))}</td>'
            f'<td>{st.open_quarantine}</td><td>{_fmt(uptime, " %", 100)}</td></tr>')
        valid = [(d.day, None if d.share_valid is None else round(d.share_valid * 100, 1),
                  d.status) for d in days]
        latency = [(d.day, d.publish_latency_s, d.status) for d in days]
        top = max([v for _, v, _ in latency if v is not None] or [1.0])
        cards.append(
            f'<section class="card" id="ds-{name}"><h2>{name} '
            f'<span class="badge" style="background:{COLORS[state]}">{label}</span></h2>'
            f'<p class="schedule">{html.escape(st.schedule)}</p>'
            f'<h3>Zeilen, die die Prüfung bestehen (%)</h3>'
            f'{_bars(valid, 100, "Anteil gültiger Zeilen", " %")}'
            f'<h3>Dauer der Veröffentlichung (s)</h3>'
            f'{_bars(latency, top, "Dauer der Veröffentlichung", " s")}'
            f'<p>verortet (letzter Tag mit Daten): '
            f'{_fmt(_last(days, "georeferenced_share"), " %", 100)}</p></section>')
    body = Template(BODY.read_text(encoding="utf-8")).substitute(
        city=html.escape(city), rows="\n".join(rows), cards="\n".join(cards),
        generated=generated.strftime("%d.%m.%Y %H:%M UTC"), days=str(len({k.day for k in kpis})))
    return page(title, "odp cockpit build", STYLE.read_text(encoding="utf-8"), body)


def _last(days: list[DayKpi], attribute: str) -> float | None:
    values = [getattr(d, attribute) for d in days if getattr(d, attribute) is not None]
    return values[-1] if values else None


def _when(stamp: str | None) -> str:
    return stamp.replace("T", " ").replace("+00:00", " UTC") if stamp else "—"


def page_status(st: Any) -> str:
    """One word per dataset: failed / held-back / killed (last run), stale, ok, never run."""
    if st.lock == "held":
        return "running"
    if st.last_status in ("failed", "held-back", "killed"):
        return str(st.last_status)
    if st.freshness == "stale":
        return "stale"
    return "ok" if st.last_success else "never run"


def build(root: Path, state: Path, city: Any, config: CockpitConfig,
          now: datetime | None = None) -> tuple[str, list[DayKpi]]:
    from odp.operations.status import all_status

    now = now or datetime.now(UTC)
    statuses = all_status(root, state, city, now)
    kpis = daily_kpis(state, [s.dataset for s in statuses], city.timezone, config.days, now)
    title = config.title or f"Open-Data-Cockpit {city.name}"
    return render_page(title, city.name, statuses, kpis, now), kpis


def write_page(root: Path, state: Path, city: Any, config: CockpitConfig, out: Path) -> Path:
    page, _ = build(root, state, city, config)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


# --- CKAN -----------------------------------------------------------------------------------


def _role(package: dict[str, Any] | None, role: str) -> dict[str, Any] | None:
    return next((r for r in (package or {}).get("resources", []) if r.get("odp_role") == role),
                None)


def _ensure_package(portal: Any, city: Any, config: CockpitConfig,
                    kpis: list[DayKpi]) -> dict[str, Any]:
    """The cockpit dataset with the metadata every dataset gets (`package_dict`), written only
    when its metadata hash changed (a no-op refresh leaves `metadata_modified` alone)."""
    import pandas as pd

    from odp.publish.catalog import ensure_organization_and_groups
    from odp.publish.metadata import package_dict, stored_hash

    dataset = cockpit_dataset(city, config)
    desired = package_dict(dataset, city, pd.DataFrame([asdict(k) for k in kpis]))
    package = portal.show("package_show", dataset.name)
    if package is None:
        ensure_organization_and_groups(portal, dataset, city)
        return portal.call("package_create", **desired)
    if stored_hash(package) != stored_hash(desired):
        ensure_organization_and_groups(portal, dataset, city)
        return portal.call("package_patch", id=package["id"], **desired)
    return package


def publish(root: Path, state: Path, city: Any, config: CockpitConfig) -> str:
    """Create or update the cockpit dataset: its metadata, the KPI DataStore table (upsert on
    dataset + day) and, with publish_page, the status page. Returns the dataset's URL."""
    from odp.publish.portal import Portal

    page, kpis = build(root, state, city, config)
    portal = Portal(city)
    name = config.dataset
    package = _ensure_package(portal, city, config, kpis)
    table = _role(package, KPI_ROLE)
    if table is None or not table.get("datastore_active"):
        target: dict[str, Any] = (
            {"resource_id": table["id"]} if table else
            {"resource": {"package_id": package["id"], "name": "KPI je Datensatz und Tag",
                          "odp_role": KPI_ROLE, "format": "CSV"}})
        created = portal.call(
            "datastore_create", force=True, primary_key=["dataset", "day"], **target,
            fields=[{"id": f, "type": t, "info": {"label": f, "notes": n}}
                    for f, t, n in KPI_FIELDS])
        resource_id = created["resource_id"]
    else:
        resource_id = table["id"]
    records = [asdict(k) for k in kpis if k.runs]
    if records:
        portal.call("datastore_upsert", resource_id=resource_id, method="upsert", force=True,
                    records=records)
    if config.publish_page:
        path = state / "cockpit" / "index.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
        current = _role(package, PAGE_ROLE)
        if current is None:
            portal.call("resource_create", upload=path, package_id=package["id"],
                        name="Statusseite", format="HTML", odp_role=PAGE_ROLE)
        else:
            portal.call("resource_patch", upload=path, id=current["id"])
    return f"{portal.url}/dataset/{name}"
