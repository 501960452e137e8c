"""The fault tests use the real local CKAN, as the integration tests do."""

from tests.integration.conftest import (  # noqa: F401 (fixtures)
    ckan,
    leaves_the_portal_clean,
    portal,
)
