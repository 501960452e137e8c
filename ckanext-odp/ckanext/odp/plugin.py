"""The `odp` CKAN plugin: serves each dataset's Frictionless Table Schema as JSON at
/dataset/NAME/table-schema.json, the IRI its DCAT dct:conformsTo points to."""

from __future__ import annotations

import json

import ckan.plugins as plugins
from ckan.plugins import toolkit
from flask import Blueprint, Response


def table_schema(id: str) -> Response:
    try:
        package = toolkit.get_action("package_show")({}, {"id": id})
    except (toolkit.ObjectNotFound, toolkit.NotAuthorized):
        return toolkit.abort(404, "Dataset not found")
    schema = package.get("table_schema")
    if not schema:
        return toolkit.abort(404, "This dataset has no Table Schema")
    if isinstance(schema, str):
        schema = json.loads(schema)
    body = json.dumps(schema, ensure_ascii=False, indent=2)
    return Response(body, mimetype="application/json")


class OdpPlugin(plugins.SingletonPlugin):
    plugins.implements(plugins.IBlueprint)

    def get_blueprint(self) -> Blueprint:
        blueprint = Blueprint("odp", __name__)
        blueprint.add_url_rule(
            "/dataset/<id>/table-schema.json", view_func=table_schema, methods=["GET"]
        )
        return blueprint
