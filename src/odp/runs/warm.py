"""Imported once, by the fork server of `odp run --all` / `--due` (odp.runs.parallel): the
libraries a dataset run loads — pandas, pyarrow, dlt, DuckDB, great-expectations, geopandas —
so that every worker forked from it starts with them, as a sequential run imports them once for
all its datasets. (Spawned workers paid ~3.5 s of CPU each for them again.)"""

import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # as odp.validate.suite: no usage data

import great_expectations  # noqa: E402,F401 — what validation imports on first use

import odp.extract  # noqa: E402,F401
import odp.georeference  # noqa: E402,F401
import odp.publish.sync  # noqa: E402,F401
import odp.run  # noqa: E402,F401
import odp.unchanged  # noqa: E402,F401
