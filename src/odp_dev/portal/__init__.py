"""The local CKAN portal the project starts itself (PostgreSQL, Redis, Solr, CKAN).

See `odp_dev.portal.stack` for the API and `python -m odp_dev.portal start|stop|status|install`.
"""

from odp_dev.portal.procs import PortalError
from odp_dev.portal.stack import PortalInfo, install, portal_home, start, status, stop

__all__ = ["PortalError", "PortalInfo", "install", "portal_home", "start", "status", "stop"]
