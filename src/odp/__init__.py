"""odp: a city's open-data pipelines — extract, validate, georeference, publish to CKAN."""

import os

# Cities' servers are often offline and must not phone home: telemetry off unless set otherwise.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")  # our own output says what happened

__version__ = "0.1.0"
