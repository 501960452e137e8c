"""The local CKAN portal the project starts itself (PostgreSQL, Redis, Solr, CKAN).

See `odp.portal.stack` for the API and `python -m odp.portal start|stop|status|install`.
"""

from odp.portal.procs import PortalError
from odp.portal.stack import PortalInfo, install, portal_home, start, status, stop

__all__ = ["PortalError", "PortalInfo", "install", "portal_home", "start", "status", "stop"]
