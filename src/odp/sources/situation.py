"""Source type `situation`: the current situation, one row per station, gauge, air station and
Stadtteil with its latest value, level and time, replaced on every run (for a map and apps).

Its inputs are other datasets' last successful publish (`STATE/published/NAME.parquet`, as for
`derived`): validated, georeferenced rows only. Each input is read as a profile says
(`odp.indicators.situation`), so a new indicator dataset plugs in without code:

    [source]
    type = "situation"

    [source.inputs]                      # input dataset -> its profile
    heavy-rain-dresden-windows = "heavy_rain"
    flood-alarm-levels-saxony = "flood"

    [source.profiles.heavy_rain]
    topic = "starkregen"
    …

An input not yet published is left out (logged, and named in the run's log line); the run fails
only when none is published. A profile with `stadtteile = "nearest"` adds one row per Stadtteil
from the nearest of its stations (Thiessen polygons), until a per-Stadtteil dataset is configured
as an input of its own (`feature = "stadtteil"`).

The same configuration drives the warnings (`odp.indicators.warnings`): the situation page,
the CAP feed and the alerts, built after the dataset's run (keys `sender`, `sender_name`,
`contact`, `web`, `feed_days`, `alert_max_age`, `alerts`, `cap_tolerance_m`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from odp.errors import ConfigError, SourceError
from odp.indicators.situation import Profile, combined, latest, parse_profile, stadtteil_rows
from odp.runs.logs import log
from odp.spec import Dataset


@dataclass(frozen=True)
class WarningSettings:
    """The `[source]` keys of the warnings built after a run (see `situation`)."""

    sender: str = ""
    sender_name: str = ""
    contact: str = ""
    web: str = ""
    feed_days: int = 7
    alert_max_age: str = "24h"
    alerts: bool = True
    cap_tolerance_m: float = 10.0


@dataclass(frozen=True)
class Inputs:
    """The situation's inputs: dataset name -> its profile, in configuration order."""

    profiles: dict[str, Profile]

    @classmethod
    def of(cls, dataset: Dataset) -> Inputs:
        """From the dataset's `[source]` table (inputs and profiles checked as a run checks
        them)."""
        from odp.sources import source_arguments

        args = source_arguments(dataset, situation)
        return cls.parse(dataset, args["inputs"], args["profiles"])

    @classmethod
    def parse(cls, dataset: Dataset, inputs: dict[str, str],
              profiles: dict[str, dict[str, Any]]) -> Inputs:
        where = str(dataset.definition_path)
        if not inputs:
            raise ConfigError(f"{where}: [source.inputs] maps input datasets to their profile")
        out = {}
        for name, profile in inputs.items():
            if profile not in profiles:
                raise ConfigError(f"{where}: [source.inputs] {name}: no [source.profiles."
                                  f"{profile}] (known: {', '.join(sorted(profiles))})")
            if name == dataset.name:
                raise ConfigError(f"{where}: a situation dataset cannot be its own input")
            out[name] = parse_profile(profile, profiles[profile], where)
        return cls(out)


def settings(dataset: Dataset) -> dict[str, Any]:
    """The warning settings of `[source]` with their defaults (each checked against its type)."""
    from odp.sources.settings import settings_of

    return asdict(settings_of(WarningSettings, dataset.source))


def read_input(state: Path, name: str, profile: Profile, dataset: str) -> tuple[pd.DataFrame,
                                                                                  str] | None:
    """An input's published table (the profile's columns) and its lineage; None when the input
    was never published."""
    import pyarrow.parquet as pq

    from odp.sources.derived import input_version

    try:
        version = input_version(state, name, dataset)
    except SourceError:
        return None
    names = set(pq.read_schema(version.path).names)
    wanted = profile.columns
    missing = [c for c in wanted if c not in names and c not in (profile.latitude,
                                                                profile.longitude)]
    if missing:
        raise SourceError(f"{dataset}: input {name}: {version.path.name} has no column "
                          f"{', '.join(missing)} ([source.profiles.{profile.name}])")
    frame = pd.read_parquet(version.path, columns=[c for c in wanted if c in names])
    return frame, version.lineage


def situation_rows(dataset: Dataset, state: Path, city: Any) -> pd.DataFrame:
    """The situation table: the latest row per feature of every published input, plus the
    Stadtteil rows of profiles with `stadtteile = "nearest"`."""
    from odp.indicators.situation import units_of

    parts, missing = [], []
    for name, profile in Inputs.of(dataset).profiles.items():
        found = read_input(state, name, profile, dataset.name)
        if found is None:
            missing.append(name)
            continue
        rows = latest(found[0], profile, found[1])
        if profile.feature == "stadtteil" and len(rows):
            rows = inside_points(rows, units_of(city))
        parts.append(rows)
        if profile.stadtteile == "nearest" and len(rows):
            parts.append(stadtteil_rows(rows, units_of(city)))
    if missing:
        log.warning(f"{dataset.name}: inputs not yet published, left out: {', '.join(missing)}",
                    extra={"dataset": dataset.name, "event": "situation-input-missing"})
        if len(missing) == len(Inputs.of(dataset).profiles):
            raise SourceError(f"{dataset.name}: no input published yet ({', '.join(missing)}; "
                              f"run `odp run {missing[0]}` first)")
    return combined(parts)


def inside_points(rows: pd.DataFrame, units: Any) -> pd.DataFrame:
    """Stadtteil rows without a position get a point inside their Stadtteil (for the map and
    the georeference), and their name from the boundary file when the input has none."""
    index = {str(c): i for i, c in enumerate(units.codes)}
    at = rows["feature_id"].astype("string").map(index)
    known = at.notna().to_numpy(bool)
    rows = rows.copy()
    for column, values in (("longitude", units.lon), ("latitude", units.lat)):
        empty = rows[column].isna().to_numpy(bool) & known
        rows.loc[empty, column] = np.round(values[at[empty].astype(int).to_numpy()], 6)
    names = rows["name"].isna().to_numpy(bool) & known
    rows.loc[names, "name"] = units.names[at[names].astype(int).to_numpy()]
    return rows


def as_text(rows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The rows as raw text, as every source delivers them (times `…Z` in UTC)."""
    out = pd.DataFrame(index=rows.index)
    for column in columns:
        if column not in rows:
            out[column] = pd.Series(pd.NA, index=rows.index, dtype="string")
        elif isinstance(rows[column].dtype, pd.DatetimeTZDtype):
            out[column] = rows[column].dt.strftime("%Y-%m-%dT%H:%M:%SZ").astype("string")
        elif pd.api.types.is_bool_dtype(rows[column]):
            out[column] = rows[column].map({True: "true", False: "false"}).astype("string")
        else:
            out[column] = rows[column].astype("string")
    return out


def situation(dataset: Dataset, *, inputs: dict[str, str],
              profiles: dict[str, dict[str, Any]], sender: str = "", sender_name: str = "",
              contact: str = "", web: str = "", feed_days: int = 7, alert_max_age: str = "24h",
              alerts: bool = True, cap_tolerance_m: float = 10.0) -> Any:
    """The dlt resource of a `situation` dataset (source type registry): the whole table on
    every run (replace); publish sends CKAN only the rows that changed.

    Args:
        dataset: the dataset the rows are staged for (name, schema, extract mode).
        inputs: input dataset -> the name of its profile.
        profiles: profile name -> how an input is read (odp.indicators.situation).
        sender: the CAP <sender> (the originator, unique by its domain).
        sender_name: the CAP <senderName>.
        contact: the CAP <contact>.
        web: the CAP <web> (the situation page).
        feed_days: the CAP feed holds the warnings of the last this many days of data.
        alert_max_age: a crossing older than this (behind the input's newest time) is not
            sent to the alert channels.
        alerts: whether level crossings go to the city's `[alerts]` channels.
        cap_tolerance_m: Stadtteil polygons in CAP simplified to this many metres.
    """
    import dlt

    from odp.spec import load_city, state_dir

    Inputs.parse(dataset, inputs, profiles)  # configuration errors before anything runs
    # The warning keys are checked here with the rest; the warnings, built after the run,
    # read them again (`settings`).
    root = dataset.definition_path.parent.parent
    columns = [f.name for f in dataset.schema.source_fields]

    @dlt.resource(name=dataset.table_name, write_disposition="replace")
    def rows() -> Iterator[pd.DataFrame]:
        table = situation_rows(dataset, state_dir(root), load_city(root))
        yield as_text(table, columns)

    return rows
