"""The validation report of a run: machine-readable JSON and a short Markdown summary.

    report = build_report(result, dataset, reasons)   # a dict, JSON-ready
    write_report(state, report)                       # STATE/reports/NAME.json
    summary_markdown(report)                          # a few lines for the dataset description
    load_report(state, name)                          # the last one written, or None

The JSON (`"format": "odp-validation-report/1"`):
  dataset, run_id, started, finished        the run (UTC, ISO 8601)
  rows        validated, valid, rejected, warnings (findings), share_rejected, share_passed
  gate        decision "publish" | "held-back", reasons, the thresholds that applied
  drift       new, missing, retyped columns, and the dataset's mode (fail | evolve)
  rules       every rule checked: rule, field, severity, source (schema | suite | series |
              georeference), level (row | batch), failed (rows), pass_share
  fields      per source field: type, unit, present, completeness, errors, warnings
  batch       batch-level findings (table expectations, completeness)
An incremental run that validated nothing new keeps the previous report (the report describes
the last delivery, and an unchanged report is not uploaded again).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from odp.spec import Dataset
from odp.validate.suite import load_suite

if TYPE_CHECKING:
    from odp.validate import ValidationResult

FORMAT = "odp-validation-report/1"
RULES_SHOWN = 5  # failing rules named in the Markdown summary


def report_path(state: Path, name: str) -> Path:
    return Path(state) / "reports" / f"{name}.json"


def load_report(state: Path, name: str) -> dict[str, Any] | None:
    path = report_path(state, name)
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def write_report(state: Path, report: dict[str, Any], validated_now: int | None = None
                 ) -> Path | None:
    """Write atomically; a passing run that validated no row (`validated_now`, default the
    report's count: nothing new, or every row carried over unchanged) keeps an existing report
    (returns None)."""
    path = report_path(state, report["dataset"])
    idle = report["rows"]["validated"] if validated_now is None else validated_now
    if idle == 0 and report["gate"]["decision"] == "publish" and path.is_file():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def build_report(result: ValidationResult, dataset: Dataset, reasons: list[str]) -> dict[str, Any]:
    cfg = result.settings
    # The delivery's rows: those validated this run and those carried over unchanged from the
    # last publish (odp.delta), which passed every row rule then. Counting both keeps the
    # report, and the description it gives, the same when a delivery did not change.
    total = result.total + result.carried
    rows = result.findings[result.findings["row"].notna()]
    batch = result.findings[result.findings["row"].isna()]
    return {
        "format": FORMAT,
        "dataset": dataset.name,
        "run_id": result.run_id,
        "started": result.started,
        "finished": result.finished,
        "rows": {
            "validated": total,
            "valid": len(result.valid) + result.carried,
            "rejected": result.rejected_rows,
            "warnings": result.warnings,
            "share_rejected": round(result.rejected_rows / total, 6) if total else 0.0,
            "share_passed": round(1 - result.rejected_rows / total, 6) if total else 1.0,
        },
        "gate": {
            "decision": "held-back" if reasons else "publish",
            "reasons": reasons,
            "max_quarantine_share": cfg.max_quarantine_share,
            "min_rows": cfg.min_rows,
            "max_rows": cfg.max_rows,
        },
        "drift": {"mode": cfg.drift, **result.drift.to_dict()},
        "rules": _rules(result, dataset, rows),
        "fields": _fields(result, dataset, rows),
        "batch": [
            {"rule": str(f.rule), "severity": str(f.severity), "message": str(f.reason)}
            for f in batch.itertuples(index=False)
        ] + [{"rule": "completeness", "severity": "error", "message": m}
             for m in result.batch_errors if m.startswith("field '")],
    }


def _failed_rows(rows: pd.DataFrame) -> dict[tuple[str, str, str], int]:
    if rows.empty:
        return {}
    counts = rows.groupby(["rule", "field", "severity"])["row"].nunique()
    return {(str(r), str(f), str(s)): int(n) for (r, f, s), n in counts.items()}


def _rules(result: ValidationResult, dataset: Dataset, rows: pd.DataFrame) -> list[dict[str, Any]]:
    failed = _failed_rows(rows)
    catalog: list[tuple[str, str, str, str, str]] = []  # rule, field, severity, source, level
    for f in dataset.schema.source_fields:
        if f.type != "string":
            catalog.append((f"type:{f.type}", f.name, "error", "schema", "row"))
        for name in f.constraints:
            rule = "required" if name == "required" else f"constraint:{name}"
            if name != "required" or f.required:
                catalog.append((rule, f.name, "error", "schema", "row"))
    for item in load_suite(dataset.suite_path, dataset.schema).expectations:
        kwargs = item.get("kwargs", {})
        columns = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
        columns += list(kwargs.get("column_list", []))
        level = "batch" if item["type"].startswith("expect_table_") else "row"
        severity = item.get("meta", {}).get("severity", "error")
        catalog.append((item["type"], ",".join(columns), severity, "suite", level))
    if (series := result.settings.series) is not None:
        if series.monotonic != "off":
            catalog.append(("series:monotonic", series.time, series.monotonic, "series", "row"))
        for check in series.values:
            if check.max_jump is not None:
                catalog.append(("series:jump", check.column, check.severity, "series", "row"))
            if check.flat_count is not None:
                catalog.append(("series:flat", check.column, check.severity, "series", "row"))
    # Rules of later stages (georeferencing) and of the key check appear when they rejected rows.
    catalog += [(rule, field, severity, _source(rule), "row")
                for rule, field, severity in failed
                if not any(c[:3] == (rule, field, severity) for c in catalog)]
    out = []
    batch_messages = " ".join(result.batch_errors)
    for rule, field, severity, source, level in dict.fromkeys(catalog):
        if level == "batch":
            bad = 1 if rule in batch_messages else 0
            share = 1.0 - bad
        else:
            bad = failed.get((rule, field, severity), 0)
            delivered = result.total + result.carried
            share = 1 - bad / delivered if delivered else 1.0
        out.append({"rule": rule, "field": field, "severity": severity, "source": source,
                    "level": level, "failed": bad, "pass_share": round(share, 6)})
    return out


def _source(rule: str) -> str:
    if rule.startswith("georeference:"):
        return "georeference"
    return "schema" if rule in ("primary_key", "required") else "other"


def _fields(result: ValidationResult, dataset: Dataset, rows: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {}
    delivered = result.total + result.carried
    by_field = rows.groupby(["field", "severity"])["row"].nunique() if not rows.empty else {}
    for f in dataset.schema.source_fields:
        present = result.present.get(f.name, 0)
        out[f.name] = {
            "type": f.type,
            "unit": f.unit,
            "required": f.required,
            "present": present,
            "completeness": round(present / delivered, 6) if delivered else 1.0,
            "errors": int(by_field.get((f.name, "error"), 0)),
            "warnings": int(by_field.get((f.name, "warning"), 0)),
        }
    return out


# --- the human-readable summary --------------------------------------------------------------


def summary_markdown(report: dict[str, Any], with_time: bool = True) -> str:
    """A few Markdown lines (German, for the dataset description): last run, counts, share
    passed, rules and which failed, drift, the gate's decision. `with_time=False` leaves the
    run's time out, so the text changes only when the results do (no metadata write per run)."""
    rows, gate, rules = report["rows"], report["gate"], report["rules"]
    when = _when(report.get("finished") or report.get("started") or "")
    heading = f"**Validierung** (letzter Lauf {when})" if with_time else "**Validierung**"
    lines = [
        f"{heading}: {_int(rows['validated'])} Zeilen geprüft, "
        f"{_pct(rows['share_passed'])} bestanden, {_int(rows['rejected'])} in Quarantäne, "
        f"{_int(rows['warnings'])} Warnungen.",
    ]
    failing = [r for r in rules if r["failed"]]
    checked = f"{len(rules)} Regeln geprüft (Schema, Plausibilität, Zeitreihe)"
    if not failing:
        lines.append(f"- {checked}, alle bestanden.")
    else:
        shown = sorted(failing, key=lambda r: r["pass_share"])[:RULES_SHOWN]
        named = "; ".join(
            f"`{r['rule']}` {r['field']} {_pct(r['pass_share'])}"
            + (" (Warnung)" if r["severity"] == "warning" else "")
            for r in shown
        )
        more = f" und {len(failing) - len(shown)} weitere" if len(failing) > len(shown) else ""
        lines.append(f"- {checked}; nicht vollständig bestanden: {named}{more}.")
    drift = report["drift"]
    changes = [*(f"neu: {c}" for c in drift["new"]), *(f"fehlt: {c}" for c in drift["missing"]),
               *(f"Typ geändert: {r['column']}" for r in drift["retyped"])]
    if changes:
        lines.append(f"- Schemaabweichung ({drift['mode']}): {', '.join(changes)}.")
    if gate["decision"] == "held-back":
        lines.append("- Lieferung zurückgehalten, die zuletzt veröffentlichte Version bleibt: "
                     + "; ".join(gate["reasons"]))
    return "\n".join(lines)


def _when(stamp: str) -> str:
    try:
        at = pd.Timestamp(stamp)
    except ValueError:
        return stamp or "unbekannt"
    return at.strftime("%d.%m.%Y %H:%M UTC")


def _int(n: int) -> str:
    return f"{n:,}".replace(",", ".")


def _pct(share: float) -> str:
    percent = share * 100
    if share < 1 and round(percent, 1) >= 100:
        percent = 99.9  # never "100 %" while something failed
    text = f"{percent:.1f}".replace(".", ",")
    return f"{text.removesuffix(',0')} %"
