"""The fault tests use the real local CKAN, as the integration tests do."""

from tests.integration.conftest import ckan, portal  # noqa: F401 (fixtures)
