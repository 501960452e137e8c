"""The dataset's organisation (Amt, Eigenbetrieb …) and theme groups in CKAN, from the city
file: created when missing, never changed or deleted (officers may edit them in CKAN)."""

from __future__ import annotations

from odp.publish.dcat import facts
from odp.publish.portal import Portal
from odp.spec import City, Dataset


def ensure_organization_and_groups(portal: Portal, dataset: Dataset, city: City) -> None:
    info = facts(dataset, city)
    org = info.organization
    if portal.show("organization_show", org.name) is None:
        extras = {"kind": org.kind, "url": org.url, "email": org.email}
        portal.call(
            "organization_create", name=org.name, title=org.title, description=org.description,
            extras=[{"key": k, "value": v} for k, v in extras.items() if v],
        )  # fmt: skip
    for group in info.groups:
        if portal.show("group_show", group.name) is None:
            portal.call(
                "group_create", name=group.name, title=group.title,
                description=f"Datensätze der EU-Kategorie „{group.title}“ ({group.theme}).",
                extras=[{"key": "theme", "value": group.theme}],
            )  # fmt: skip
