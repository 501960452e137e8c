"""The dataset's organisation (Amt, Eigenbetrieb …) and theme groups in CKAN, from the city
file: created when missing, never changed or deleted (officers may edit them in CKAN)."""

from __future__ import annotations

from typing import Any

from odp.errors import NameConflictError
from odp.publish.dcat import facts
from odp.publish.portal import Portal
from odp.spec import City, Dataset


def ensure_organization_and_groups(portal: Portal, dataset: Dataset, city: City) -> None:
    info = facts(dataset, city)
    org = info.organization
    extras = {"kind": org.kind, "url": org.url, "email": org.email}
    _create_missing(portal, "organization", org.name, title=org.title,
                    description=org.description,
                    extras=[{"key": k, "value": v} for k, v in extras.items() if v])
    for group in info.groups:
        _create_missing(portal, "group", group.name, title=group.title,
                        description=f"Datensätze der EU-Kategorie „{group.title}“ "
                                    f"({group.theme}).",
                        extras=[{"key": "theme", "value": group.theme}])


def _create_missing(portal: Portal, kind: str, name: str, **fields: Any) -> None:
    """Create the organisation or group unless CKAN has it. Datasets of one organisation run
    side by side (`odp run --all`): when another run created it between the look-up and the
    create, CKAN refuses the name — it is there, which is all this asks."""
    if portal.show(f"{kind}_show", name) is not None:
        return
    try:
        portal.call(f"{kind}_create", name=name, **fields)
    except NameConflictError:  # the name is held: `Portal` asked CKAN after the refusal
        return
