"""Imported once, by the fork server of `odp run --all` / `--due` (odp.runs.parallel): the
libraries a dataset run loads — pandas, pyarrow, dlt, DuckDB, great-expectations, geopandas —
so that every worker forked from it starts with them, as a sequential run imports them once for
all its datasets. (Spawned workers paid ~3.5 s of CPU each for them again.)"""

import gc

from odp.validate.suite import import_gx

import_gx()  # what validation imports on first use

import odp.extract  # noqa: E402,F401
import odp.georeference  # noqa: E402,F401
import odp.publish.sync  # noqa: E402,F401
import odp.run  # noqa: E402,F401
import odp.unchanged  # noqa: E402,F401

# The imports' objects out of the collector's way, as Python's documentation advises before
# fork(): no worker's collection walks them, nor writes to the pages they share with it.
gc.freeze()
