"""DCAT-AP.de read back from the real local CKAN. Every dataset the project publishes — each
definition in pipelines/ (derived datasets included) and the KPI cockpit — is published once
(isolated copies, `odp run` and `odp cockpit publish` as cron calls them, sources replayed); the
RDF of all of them (/dataset/NAME.ttl and the catalog endpoint) is validated with GovData's
SHACL profiles: 0 violations on "Spezifikation" and on "Spezifikation + Konventionen". A new
dataset is covered without touching this file. Two of them (the Elbe gauge, the schools) are
checked field by field against the official DCAT-AP.de 2.0 examples."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import rdflib
import requests
from rdflib import Literal, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF

from odp.operations.cockpit import CockpitConfig
from odp.spec import dataset_names, load_city
from odp_dev.replay import ReplayServer
from tests.dcat_shacl import DCAT_DIR, PROFILES, validate
from tests.helpers import (
    RECORDINGS,
    REPO,
    cli_env,
    cli_reports,
    make_project,
    odp_cli,
    session_org,
)

pytestmark = pytest.mark.integration

ELBE, SCHOOLS = "elbe-water-level-dresden", "schools-dresden"
DCATDE = rdflib.Namespace("http://dcat-ap.de/def/dcatde/")
VCARD = rdflib.Namespace("http://www.w3.org/2006/vcard/ns#")
EU = "http://publications.europa.eu/resource/authority/"
EXAMPLES = sorted((DCAT_DIR / "examples").glob("*.rdf"))
# The recordings' scenarios, in this order: each dataset is published at the first one all its
# sources answer in (the Elbe gauge's 30 days end on 2024-11-20; the Saxon gauges are recorded
# for 2024-11-22 only); a dataset that fails in all of them fails the tests below.
SCENARIOS = ("2024-11-20", "2024-11-22")


def _with_own_cockpit(root: Path, tag: str) -> str:
    """Rename the copied city file's cockpit dataset to this copy's `TAG-kpi-cockpit`."""
    city = root / "cities" / "dresden.toml"
    configured = CockpitConfig.from_city(load_city(root)).dataset
    assert configured, "the city file publishes no cockpit"
    text = city.read_text(encoding="utf-8")
    city.write_text(text.replace(f'dataset = "{configured}"', f'dataset = "{tag}-kpi-cockpit"'),
                    encoding="utf-8")
    assert CockpitConfig.from_city(load_city(root)).dataset == f"{tag}-kpi-cockpit"
    return f"{tag}-kpi-cockpit"


@pytest.fixture(scope="module")
def published(portal, tmp_path_factory) -> Iterator[dict]:
    """Every dataset of pipelines/ and the cockpit, published once for this module."""
    tmp = tmp_path_factory.mktemp("dcat")
    root, names = make_project(tmp, dataset_names(REPO))
    cockpit = _with_own_cockpit(root, names[ELBE].split("-", 1)[0])
    todo, failed = list(names.values()), {}
    with ReplayServer(RECORDINGS) as replay:
        env = cli_env(root, tmp / "state", replay.url, portal)
        for scenario in SCENARIOS:
            replay.scenario = scenario
            reports = cli_reports(odp_cli(env, "run", *todo, "--json"))
            failed = {r["dataset"]: r.get("error", "") for r in reports
                      if r["status"] not in ("ok", "unchanged")}
            todo = list(failed)
            if not todo:
                break
        done = odp_cli(env, "cockpit", "publish")
    assert done.returncode == 0, done.stderr
    yield {"root": root, "names": names, "url": portal.url, "failed": failed,
           "all": [*names.values(), cockpit]}


def _graph(url: str, fmt: str) -> rdflib.Graph:
    response = requests.get(url, timeout=60)
    assert response.status_code == 200, f"{url}: HTTP {response.status_code}"
    return rdflib.Graph().parse(data=response.text, format=fmt)


def _dataset(graph: rdflib.Graph) -> URIRef:
    (ref,) = graph.subjects(RDF.type, DCAT.Dataset)
    return ref


def _one(graph: rdflib.Graph, subject, predicate):
    values = list(graph.objects(subject, predicate))
    assert len(values) == 1, f"{predicate}: {values}"
    return values[0]


def test_elbe_rdf_carries_every_dcat_ap_de_field(published, ckan):
    name = published["names"][ELBE]
    g = _graph(f"{published['url']}/dataset/{name}.rdf", "xml")
    ds = _dataset(g)
    assert _one(g, ds, DCATDE.contributorID) == URIRef(
        "http://dcat-ap.de/def/contributors/freistaatSachsen")
    assert _one(g, ds, DCATDE.politicalGeocodingURI) == URIRef(
        "http://dcat-ap.de/def/politicalGeocoding/regionalKey/146120000000")
    assert _one(g, ds, DCATDE.politicalGeocodingLevelURI) == URIRef(
        "http://dcat-ap.de/def/politicalGeocoding/Level/municipality")
    assert set(g.objects(ds, DCAT.theme)) == {URIRef(EU + "data-theme/ENVI"),
                                              URIRef(EU + "data-theme/TRAN")}
    assert _one(g, ds, DCTERMS.accrualPeriodicity) == URIRef(EU + "frequency/15MIN")
    assert _one(g, ds, DCTERMS.identifier) == Literal(f"{published['url']}/dataset/{name}")
    assert _one(g, ds, DCTERMS.language) == URIRef(EU + "language/DEU")
    # Publisher (the organisation) and originator (the source's operator).
    publisher = _one(g, ds, DCTERMS.publisher)
    assert str(_one(g, publisher, FOAF.name)) == "Landeshauptstadt Dresden"
    originator = _one(g, ds, DCATDE.originator)
    assert "WSV" in str(_one(g, originator, FOAF.name))
    # One contact point, with e-mail and web page.
    contact = _one(g, ds, DCAT.contactPoint)
    assert _one(g, contact, VCARD.hasEmail) == URIRef("mailto:opendata@dresden.de")
    assert _one(g, contact, VCARD.hasURL) == URIRef("https://opendata.dresden.de/")
    # Temporal coverage from the data (UTC), spatial coverage (the gauge's point).
    period = _one(g, ds, DCTERMS.temporal)
    assert _one(g, period, DCAT.startDate).toPython().isoformat() == "2024-10-21T06:00:00+00:00"
    assert _one(g, period, DCAT.endDate).toPython().isoformat() == "2024-11-20T07:00:00+00:00"
    location = _one(g, ds, DCTERMS.spatial)
    geometries = {str(v) for v in g.objects(location, rdflib.URIRef(
        "http://www.w3.org/ns/locn#geometry"))}
    assert any(v.startswith("POINT (13.73") for v in geometries), geometries
    # Distributions: licence IRI, attribution, EU file type, IANA media type, conformsTo.
    schema_url = f"{published['url']}/dataset/{name}/table-schema.json"
    formats = {}
    for dist in g.objects(ds, DCAT.distribution):
        assert _one(g, dist, DCTERMS.license) == URIRef(
            "http://dcat-ap.de/def/licenses/dl-zero-de/2.0")
        assert "PEGELONLINE" in str(_one(g, dist, DCATDE.licenseAttributionByText))
        fmt = str(_one(g, dist, DCTERMS["format"]))
        formats[fmt.rsplit("/", 1)[1]] = dist
        assert str(_one(g, dist, DCAT.mediaType)).startswith(
            "https://www.iana.org/assignments/media-types/")
    assert {"CSV", "PARQUET"} <= set(formats)
    csv = formats["CSV"]
    assert _one(g, csv, DCAT.mediaType) == URIRef(
        "https://www.iana.org/assignments/media-types/text/csv")
    assert _one(g, csv, DCTERMS.conformsTo) == URIRef(schema_url)
    assert URIRef(schema_url) in set(g.objects(ds, DCTERMS.conformsTo))


def test_properties_and_iris_are_those_of_the_official_examples(published):
    """Every dcatde property we write is one the official DCAT-AP.de 2.0 examples use, and each
    IRI-valued property takes its values from the vocabulary the examples take them from."""
    examples = rdflib.Graph()
    for path in EXAMPLES:
        examples.parse(path, format="xml")
    ours = rdflib.Graph()
    for name in published["names"].values():
        ours += _graph(f"{published['url']}/dataset/{name}.ttl", "turtle")

    def dcatde_properties(graph: rdflib.Graph) -> set:
        return {p for p in graph.predicates() if str(p).startswith(str(DCATDE))}

    assert dcatde_properties(ours) <= dcatde_properties(examples) | {DCATDE.geocodingDescription}
    assert {DCATDE.contributorID, DCATDE.politicalGeocodingURI, DCATDE.politicalGeocodingLevelURI,
            DCATDE.licenseAttributionByText, DCATDE.originator} <= dcatde_properties(ours)

    def vocabulary(value) -> str:
        text = str(value)
        for scheme in ("/licenses/", "/contributors/", "/Level/", "/data-theme/", "/file-type/",
                       "/frequency/", "/language/"):
            if scheme in text:
                return text.split(scheme)[0] + scheme
        return text.rsplit("/", 2)[0]

    for predicate in (DCTERMS.license, DCAT.theme, DCTERMS["format"], DCTERMS.language,
                      DCTERMS.accrualPeriodicity, DCATDE.contributorID,
                      DCATDE.politicalGeocodingLevelURI):
        expected = {vocabulary(v) for v in examples.objects(None, predicate)}
        found = {vocabulary(v) for v in ours.objects(None, predicate)}
        assert found and found <= expected, f"{predicate}: {found} not in {expected}"


def test_every_dataset_of_pipelines_and_the_cockpit_is_published(published):
    assert published["failed"] == {}
    tag = published["names"][ELBE].split("-", 1)[0]
    catalog = _graph(f"{published['url']}/catalog.ttl?q=name:{tag}-*", "turtle")
    found = {str(_one(catalog, ds, DCTERMS.identifier)).rsplit("/", 1)[1]
             for ds in catalog.subjects(RDF.type, DCAT.Dataset)}
    assert found == set(published["all"])


@pytest.mark.parametrize("profile", list(PROFILES))
def test_shacl_no_violations_on_every_dataset_and_the_catalog(published, profile):
    datasets = rdflib.Graph()
    for name in published["all"]:
        graph = _graph(f"{published['url']}/dataset/{name}.ttl", "turtle")
        assert (None, RDF.type, DCAT.Dataset) in graph, name
        datasets += graph
    tag = published["names"][ELBE].split("-", 1)[0]
    catalog = _graph(f"{published['url']}/catalog.ttl?q=name:{tag}-*", "turtle")
    for label, graph in {"datasets": datasets, "catalog": catalog}.items():
        violations = [str(f) for f in validate(graph, profile) if f.severity == "Violation"]
        assert violations == [], f"{label}: {violations}"


def test_the_validator_reproduces_govdatas_results_on_the_official_examples():
    """The offline SHACL set-up counts as GovData's validator does (tests/dcat/README.md)."""
    counts = {}
    for path in EXAMPLES:
        graph = rdflib.Graph().parse(path, format="xml")
        for profile in PROFILES:
            findings = validate(graph, profile)
            counts[path.stem.rsplit("_", 1)[1], profile] = tuple(
                sum(f.severity == s for f in findings) for s in ("Violation", "Warning", "Info"))
    assert counts == {
        ("SIMPLE", "Spezifikation"): (0, 0, 0),
        ("SIMPLE", "Spezifikation + Konventionen"): (1, 5, 2),  # K36: no dct:publisher
        ("ADVANCED", "Spezifikation"): (0, 1, 0),
        ("ADVANCED", "Spezifikation + Konventionen"): (0, 5, 4),
    }


def test_table_schema_is_published_where_conforms_to_points(published):
    name = published["names"][SCHOOLS]
    served = requests.get(f"{published['url']}/dataset/{name}/table-schema.json", timeout=30)
    assert served.status_code == 200
    assert served.headers["Content-Type"].startswith("application/json")
    assert served.json() == json.loads((REPO / "schemas" / f"{SCHOOLS}.json").read_text("utf-8"))


def test_organisations_and_theme_groups_come_from_the_city_file(published, ckan):
    schools = ckan.action.package_show(id=published["names"][SCHOOLS])
    assert schools["organization"]["name"] == session_org("schulverwaltungsamt")
    org = ckan.action.organization_show(id=session_org("schulverwaltungsamt"))
    assert org["title"] == "Landeshauptstadt Dresden, Schulverwaltungsamt"
    assert {e["key"]: e["value"] for e in org["extras"]}["kind"] == "Amt"
    assert [g["name"] for g in schools["groups"]] == ["bildung-kultur-sport"]
    group = ckan.action.group_show(id="umwelt")
    assert {e["key"]: e["value"] for e in group["extras"]}["theme"] == EU + "data-theme/ENVI"
    elbe = ckan.action.package_show(id=published["names"][ELBE])
    assert {g["name"] for g in elbe["groups"]} == {"umwelt", "verkehr"}


def test_catalog_names_its_publisher_and_language(published):
    g = _graph(f"{published['url']}/catalog.ttl?q=name:{published['names'][ELBE]}", "turtle")
    (catalog,) = g.subjects(RDF.type, DCAT.Catalog)
    assert _one(g, catalog, DCTERMS.language) == URIRef(EU + "language/DEU")
    publisher = _one(g, catalog, DCTERMS.publisher)
    assert str(_one(g, publisher, FOAF.name))
    assert os.path.basename(str(_one(g, catalog, DCAT.themeTaxonomy))) == "data-theme"

