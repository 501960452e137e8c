"""Offline SHACL validation with GovData's DCAT-AP.de 2.0 profiles (tests/dcat/README.md).

Data graph = the RDF under test plus the controlled vocabularies (as GovData's validator merges
its imports into the data); shapes = the profile's files; no inference; only top-level results
are counted (pyshacl nests sh:node details as further results).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import rdflib
from rdflib.graph import ReadOnlyGraphAggregate

DCAT_DIR = Path(__file__).parent / "dcat"
SPEC = (
    "dcat-ap-de-imports.ttl",
    "dcat-ap-spec-german-messages.ttl",
    "dcat-ap-spec-german-additions.ttl",
    "dcat-ap-de-deprecated.ttl",
    "dcat-ap_2.1.1_shacl_shapes.ttl",
)
PROFILES = {
    "Spezifikation": SPEC,
    "Spezifikation + Konventionen": (*SPEC, "dcat-ap-konventionen.ttl"),
}
# Concepts the EU added to its tables after the versions in tests/dcat/vocabularies (the live
# validator reads the current tables): PARQUET joined the file-type table after 20220615-0.
LATER_CONCEPTS = (
    ("http://publications.europa.eu/resource/authority/file-type/PARQUET",
     "http://publications.europa.eu/resource/authority/file-type"),
)


@dataclass(frozen=True)
class Finding:
    severity: str  # Violation, Warning, Info
    focus: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.focus} {self.path}: {self.message}"


@lru_cache(maxsize=1)
def vocabularies() -> rdflib.Graph:
    graph = rdflib.Graph()
    for path in sorted((DCAT_DIR / "vocabularies").glob("**/*.*")):
        graph.parse(path, format="xml" if path.suffix == ".rdf" else "turtle")
    for concept, scheme in LATER_CONCEPTS:
        graph.add((rdflib.URIRef(concept), rdflib.SKOS.inScheme, rdflib.URIRef(scheme)))
    return graph


@lru_cache(maxsize=2)
def shapes(profile: str) -> rdflib.Graph:
    graph = rdflib.Graph()
    for name in PROFILES[profile]:
        graph.parse(DCAT_DIR / "shapes" / name, format="turtle")
    return graph


def validate(data: rdflib.Graph, profile: str) -> list[Finding]:
    """Every top-level result of the profile on `data`."""
    from pyshacl import validate as shacl

    _, report, _ = shacl(
        ReadOnlyGraphAggregate([data, vocabularies()]), shacl_graph=shapes(profile),
        inference="none", allow_warnings=True,
    )  # fmt: skip
    sh = rdflib.SH
    findings = []
    for result in report.objects(None, sh.result):
        severity = str(report.value(result, sh.resultSeverity)).rsplit("#", 1)[-1]
        messages = [str(m) for m in report.objects(result, sh.resultMessage)]
        findings.append(Finding(
            severity, str(report.value(result, sh.focusNode)),
            str(report.value(result, sh.resultPath) or ""), " / ".join(messages),
        ))  # fmt: skip
    return findings


def violations(data: rdflib.Graph, profile: str) -> list[Finding]:
    return [f for f in validate(data, profile) if f.severity == "Violation"]


def dataset_violations(portal_url: str, name: str, token: str | None = None
                       ) -> dict[str, list[str]]:
    """Per profile, the violations in a published dataset's DCAT (`/dataset/NAME.ttl`)."""
    import requests

    headers = {"Authorization": token} if token else {}
    response = requests.get(f"{portal_url}/dataset/{name}.ttl", headers=headers, timeout=60)
    response.raise_for_status()
    graph = rdflib.Graph().parse(data=response.text, format="turtle")
    return {profile: [str(f) for f in violations(graph, profile)] for profile in PROFILES}
