"""Tests for the dev/test-only Solr stand-in (odp.portal.solr_standin).

Request shapes are copied from what CKAN 2.12 sends through pysolr 3.11.0:
  * ckan/lib/search/index.py   PackageSearchIndex.index_package -> conn.add(docs=[pkg_dict],
    commit=True) -> POST /update/?commit=true, JSON array body (None/"" values dropped);
    delete_package / clear_index -> conn.delete(q=...) -> POST /update/ XML <delete><query>.
  * ckan/lib/search/query.py   PackageSearchQuery.run -> GET /select/?q=..&fq=..(repeated)..
    &fl=id validated_data_dict&facet=true&facet.limit=50&facet.mincount=1&defType=dismax
    &tie=0.1&mm=2<-1 5<80%&qf=name^4 title^4 tags^2 groups^2 text&df=text&q.op=AND&wt=json
    (rows = requested rows + 1); get_index / get_all_entity_ids.
  * ckan/lib/search/__init__.py check_solr_schema_version -> GET /schema?wt=schema.xml.
  * ckan/lib/search/common.py  is_available -> conn.search(q="*:*", rows=1).
  * ckan/lib/dictization/model_dictize.py get_group_dataset_counts -> facet on groups/owner_org.
"""

from __future__ import annotations

import hashlib
import json
import threading
import xml.dom.minidom
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from odp.portal.solr_standin import serve

SITE = "default"
QUERY_FIELDS = "name^4 title^4 tags^2 groups^2 text"  # ckan/lib/search/query.py


def _start(data_dir: Path) -> tuple[Any, str]:
    server = serve("127.0.0.1", 0, data_dir)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/solr/ckan"


def _stop(server: Any) -> None:
    server.shutdown()
    server.server_close()


@pytest.fixture
def solr(tmp_path: Path) -> Iterator[str]:
    server, url = _start(tmp_path)
    yield url
    _stop(server)


def pkg_doc(
    name: str,
    *,
    title: str,
    tags: list[str],
    org: str = "city",
    modified: str = "2024-05-01T12:00:00.123456",
    state: str = "active",
    private: bool = False,
    dataset_type: str = "dataset",
    notes: str = "",
    res_format: list[str] | None = None,
    groups: list[str] | None = None,
    extras: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A document shaped like PackageSearchIndex.index_package's output (ckan/lib/search/
    index.py), after pysolr's _build_json_doc dropped None/'' values."""
    pkg_id = hashlib.md5(name.encode()).hexdigest()
    data = {"id": pkg_id, "name": name, "title": title, "tags": [{"name": t} for t in tags]}
    doc: dict[str, Any] = {
        "id": pkg_id,
        "name": name,
        "title": title,
        "title_string": title,
        "notes": notes,
        "state": state,
        "private": private,
        "type": dataset_type,
        "dataset_type": dataset_type,
        "owner_org": f"org-id-{org}",
        "organization": org,
        "capacity": "private" if private else "public",
        "tags": tags,
        "groups": groups or [],
        "res_format": res_format or [],
        "res_name": ["data file"],
        "license_id": "cc-by",
        "num_resources": 1,
        "num_tags": len(tags),
        "metadata_created": "2024-01-01T00:00:00Z",
        "metadata_modified": modified + "Z",
        "entity_type": "package",
        "site_id": SITE,
        "index_id": hashlib.md5(f"{pkg_id}{SITE}".encode()).hexdigest(),
        "permission_labels": ["public"] if not private else [f"member-org-id-{org}"],
        "data_dict": json.dumps(data),
        "validated_data_dict": json.dumps(data),
        **{f"extras_{k}": v for k, v in (extras or {}).items()},
    }
    return {k: v for k, v in doc.items() if v is not None and v != ""}


def add(url: str, docs: list[dict[str, Any]], commit: bool = True) -> requests.Response:
    # pysolr.Solr.add -> _update(solrapi="JSON"): POST update/?commit=true
    path = f"{url}/update/" + ("?commit=true" if commit else "")
    r = requests.post(
        path,
        data=json.dumps(docs).encode(),
        headers={"Content-type": "application/json; charset=utf-8"},
        timeout=10,
    )
    return r


def xml_update(url: str, body: str, commit: bool | None = None) -> requests.Response:
    path = f"{url}/update/" + ("?commit=true" if commit else "")
    return requests.post(
        path, data=body.encode(), headers={"Content-type": "text/xml; charset=utf-8"}, timeout=10
    )


def select(url: str, **params: Any) -> dict[str, Any]:
    params.setdefault("wt", "json")
    r = requests.get(f"{url}/select/", params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def package_search_params(q: str = "", fq: str = "", **extra: Any) -> dict[str, Any]:
    """What package_search (logic/action/get.py) + PackageSearchQuery.run send for a web UI
    search, including the fq list and dismax defaults."""
    params: dict[str, Any] = {
        "q": q or "*:*",
        "fq": [f"+capacity:public {fq} +state:(active)".strip(), f'+site_id:"{SITE}"'],
        "fl": "id validated_data_dict",
        "rows": 21,
        "start": 0,
        "sort": "score desc, metadata_modified desc",
        "facet": "true",
        "facet.limit": 50,
        "facet.mincount": 1,
        "df": "text",
        "q.op": "AND",
        "facet.field": ["organization", "groups", "tags", "res_format", "license_id"],
        "wt": "json",
    }
    if ":" not in params["q"]:
        params.update({"defType": "dismax", "tie": "0.1", "mm": "2<-1 5<80%", "qf": QUERY_FIELDS})
    params.update(extra)
    return params


@pytest.fixture
def seeded(solr: str) -> str:
    docs = [
        pkg_doc(
            "air-quality-sensors",
            title="Air Quality Sensors",
            tags=["air", "environment"],
            modified="2024-05-03T10:00:00",
            res_format=["CSV", "GeoJSON"],
            notes="Hourly measurements of particulate matter",
            groups=["environment"],
            extras={"spatial_uri": "http://example.org/district/1"},
        ),
        pkg_doc(
            "schools",
            title="Schools of the city",
            tags=["education"],
            modified="2024-05-01T10:00:00",
            res_format=["CSV"],
        ),
        pkg_doc(
            "trees",
            title="Street Trees",
            tags=["environment", "trees"],
            modified="2024-05-02T10:00:00",
            res_format=["GeoJSON"],
            org="parks",
        ),
        pkg_doc("draft-thing", title="Draft air data", tags=["air"], state="draft"),
        pkg_doc("secret-air", title="Private air list", tags=["air"], private=True),
        pkg_doc("harvest-src", title="Air harvester", tags=["air"], dataset_type="harvest"),
    ]
    r = add(solr, docs)
    assert r.status_code == 200, r.text
    return solr


def names(result: dict[str, Any]) -> list[str]:
    return [json.loads(d["validated_data_dict"])["name"] for d in result["response"]["docs"]]


def test_startup_endpoints_ckan_calls(solr: str) -> None:
    # is_available(): conn.search(q="*:*", rows=1)
    assert select(solr, q="*:*", rows=1)["response"]["numFound"] == 0
    # check_solr_schema_version(): GET <solr_url>/schema?wt=schema.xml, parse root name attr
    r = requests.get(solr + "/schema?wt=schema.xml", timeout=10)
    assert r.status_code == 200
    root = xml.dom.minidom.parseString(r.text).documentElement
    assert root.getAttribute("name") == "ckan-2.12"
    r = requests.get(solr + "/admin/file/?file=schema.xml", timeout=10)
    assert xml.dom.minidom.parseString(r.text).documentElement.getAttribute("name") == "ckan-2.12"
    assert requests.get(solr + "/admin/ping/?wt=json", timeout=10).json()["status"] == "OK"
    assert requests.get(solr + "/schema/version", timeout=10).json()["version"] == 1.6


def test_unknown_endpoint_is_404(solr: str) -> None:
    r = requests.get(solr + "/spell?q=x", timeout=10)
    assert r.status_code == 404
    assert "no handler" in r.json()["error"]["msg"]
    assert (
        requests.get(solr.replace("/ckan", "/other") + "/select?q=*:*", timeout=10).status_code
        == 404
    )


def test_add_and_dismax_search_with_ckan_filters(seeded: str) -> None:
    res = select(seeded, **package_search_params(q="air"))
    # draft, private and (not filtered here) harvest: only public+active match
    assert sorted(names(res)) == ["air-quality-sensors", "harvest-src"]
    res = select(seeded, **package_search_params(q="air", fq="+dataset_type:dataset"))
    assert names(res) == ["air-quality-sensors"]
    # -dataset_type:harvest as a separate fq (ckanext-dcat's fq_list)
    p = package_search_params(q="*:*")
    p["fq"] = [*p["fq"], "-dataset_type:harvest"]
    assert "harvest-src" not in names(select(seeded, **p))
    assert select(seeded, **p)["response"]["numFound"] == 3


def test_text_analysis_stemming_and_catch_all(seeded: str) -> None:
    # "measurement" (singular, lower case) matches notes "Hourly measurements" via `text`
    res = select(seeded, **package_search_params(q="Measurement"))
    assert names(res) == ["air-quality-sensors"]
    # extras_* are copied into the text catch-all
    assert names(select(seeded, **package_search_params(q="district"))) == ["air-quality-sensors"]
    # mm "2<-1 ...": two terms -> both required
    assert names(select(seeded, **package_search_params(q="street trees"))) == ["trees"]
    assert names(select(seeded, **package_search_params(q="street schools"))) == []


def test_fielded_queries_phrases_and_boolean(seeded: str) -> None:
    base = {"fq": f'+site_id:"{SITE}"', "fl": "name", "rows": 50, "q.op": "AND", "sort": "name asc"}

    def q(query: str) -> list[str]:
        return [d["name"] for d in select(seeded, q=query, **base)["response"]["docs"]]

    assert q('name:"schools" OR name:trees') == ["schools", "trees"]
    assert q("tags:environment -name:trees") == ["air-quality-sensors"]
    assert q("tags:environment AND NOT tags:trees") == ["air-quality-sensors"]
    assert q('title:"quality sensors"') == ["air-quality-sensors"]
    assert q('title:"sensors quality"') == []
    assert q("name:air*") == ["air-quality-sensors"]
    # string fields are exact and case-sensitive, as in Solr
    assert q("tags:Environment") == []
    assert q("state:(draft OR active) +organization:parks") == ["trees"]


def test_multivalued_tag_and_format_match(seeded: str) -> None:
    res = select(seeded, **package_search_params(q="*:*", fq='tags:"environment"'))
    assert sorted(names(res)) == ["air-quality-sensors", "trees"]
    res = select(seeded, **package_search_params(q="*:*", fq='res_format:"CSV"'))
    assert sorted(names(res)) == ["air-quality-sensors", "schools"]


def test_sort_start_rows_and_fl(seeded: str) -> None:
    p = package_search_params(q="*:*", sort="metadata_modified desc", rows=2)
    res = select(seeded, **p)
    assert res["response"]["numFound"] == 4  # public+active: 3 datasets + the harvest source
    assert len(res["response"]["docs"]) == 2
    first = names(select(seeded, **{**p, "rows": 10}))
    assert first == ["air-quality-sensors", "trees", "harvest-src", "schools"]
    assert names(select(seeded, **{**p, "start": 1, "rows": 1})) == ["trees"]
    # title_string is a StrField: byte order, so "Air Quality…" sorts before "Air harvester"
    by_title = names(select(seeded, **{**p, "sort": "title_string asc", "rows": 10}))
    assert by_title == ["air-quality-sensors", "harvest-src", "schools", "trees"]
    assert names(select(seeded, **{**p, "sort": "title_string desc", "rows": 1})) == ["trees"]
    docs = select(seeded, **{**p, "rows": 1})["response"]["docs"]
    assert set(docs[0]) == {"id", "validated_data_dict"}
    # fl=*,score returns stored fields only (permission_labels, owner_org are not stored)
    doc = select(seeded, q="name:trees", fl="*,score")["response"]["docs"][0]
    assert "score" in doc and doc["name"] == "trees" and "permission_labels" not in doc
    assert "owner_org" not in doc and doc["tags"] == ["environment", "trees"]
    assert doc["metadata_modified"] == "2024-05-02T10:00:00Z"  # Solr's date precision


def test_bad_sort_is_a_solr_error(seeded: str) -> None:
    r = requests.get(seeded + "/select/", params={"q": "*:*", "sort": "name"}, timeout=10)
    assert r.status_code == 400
    # ckan/lib/search/query.py maps this message to SearchQueryError('Invalid "sort" parameter')
    assert "Can't determine a Sort Order" in r.json()["error"]["msg"]


def test_facets(seeded: str) -> None:
    res = select(seeded, **package_search_params(q="*:*", fq="+dataset_type:dataset"))
    ff = res["facet_counts"]["facet_fields"]
    assert ff["tags"] == ["environment", 2, "air", 1, "education", 1, "trees", 1]
    assert ff["organization"] == ["city", 2, "parks", 1]
    assert ff["res_format"] == ["CSV", 2, "GeoJSON", 2]
    assert ff["groups"] == ["environment", 1]
    limited = select(seeded, **package_search_params(q="*:*", **{"facet.limit": 1}))
    assert limited["facet_counts"]["facet_fields"]["tags"] == ["air", 2]
    # get_group_dataset_counts (model_dictize.py): facet on owner_org with facet.limit=-1
    counts = select(
        seeded,
        q="*:*",
        fq=["dataset_type:dataset", f'+site_id:"{SITE}"', "+state:active"],
        fl="groups",
        rows=1,
        facet="true",
        **{"facet.field": ["groups", "owner_org"], "facet.limit": -1, "facet.mincount": 1},
    )
    assert counts["facet_counts"]["facet_fields"]["owner_org"] == [
        "org-id-city",
        3,
        "org-id-parks",
        1,
    ]


def test_date_range_queries(seeded: str) -> None:
    # ckanext-dcat: fq_list.append('metadata_modified:[{0} TO NOW]'.format(modified_since))
    p = package_search_params(q="*:*", fq="+dataset_type:dataset")
    p["fq"] = [*p["fq"], "metadata_modified:[2024-05-02T00:00:00Z TO NOW]"]
    assert sorted(names(select(seeded, **p))) == ["air-quality-sensors", "trees"]
    p["fq"][-1] = "metadata_modified:{2024-05-02T10:00:00Z TO *]"
    assert names(select(seeded, **p)) == ["air-quality-sensors"]
    p["fq"][-1] = "metadata_modified:[* TO NOW-1DAY/DAY]"
    assert len(names(select(seeded, **p))) == 3


def test_get_index_and_all_entity_ids(seeded: str) -> None:
    # PackageSearchQuery.get_index
    res = select(
        seeded, rows=1, q='name:"trees" OR id:"trees"', fq=f'+site_id:"{SITE}" +entity_type:package'
    )
    assert res["response"]["numFound"] == 1
    doc = res["response"]["docs"][0]
    assert json.loads(doc["validated_data_dict"])["name"] == "trees"
    # PackageSearchQuery.get_all_entity_ids
    res = select(seeded, q="*:*", fq=f'+site_id:"{SITE}" +state:active ', rows=1000, fl="id")
    assert len(res["response"]["docs"]) == 5 and set(res["response"]["docs"][0]) == {"id"}


def test_update_replaces_by_index_id(seeded: str) -> None:
    doc = pkg_doc("trees", title="Urban Trees", tags=["trees"])
    assert add(seeded, [doc]).status_code == 200
    res = select(seeded, q="name:trees", fl="title")
    assert res["response"]["numFound"] == 1
    assert res["response"]["docs"][0]["title"] == "Urban Trees"


def test_delete_by_query_as_ckan_sends_it(seeded: str) -> None:
    pkg_id = hashlib.md5(b"trees").hexdigest()
    # PackageSearchIndex.delete_package
    q = f'+entity_type:package AND +(id:"{pkg_id}" OR name:"{pkg_id}") AND +site_id:"{SITE}"'
    r = xml_update(seeded, f"<delete><query>{q}</query></delete>", commit=True)
    assert r.status_code == 200, r.text
    assert select(seeded, q="name:trees")["response"]["numFound"] == 0
    assert select(seeded, q="*:*")["response"]["numFound"] == 5
    # delete by id (XML, as pysolr.delete(id=...))
    idx = pkg_doc("schools", title="", tags=[])["index_id"]
    xml_update(seeded, f"<delete><id>{idx}</id></delete>")
    assert select(seeded, q="name:schools")["response"]["numFound"] == 0
    # clear_index(): '+site_id:"default"' then <commit />
    xml_update(seeded, f'<delete><query>+site_id:"{SITE}"</query></delete>')
    xml_update(seeded, "<commit />", commit=True)
    assert select(seeded, q="*:*")["response"]["numFound"] == 0


def test_invalid_documents_rejected_like_solr(solr: str) -> None:
    doc = pkg_doc("x", title="X", tags=[])
    bad_date = {**doc, "issued_date": "2024-05-01T10:00:00+02:00"}
    r = add(solr, [bad_date])
    assert r.status_code == 400 and "issued_date" in r.json()["error"]["msg"]
    r = add(solr, [{**doc, "owner_org": ["a", "b"]}])
    assert r.status_code == 400 and "multiValued" in r.json()["error"]["msg"]
    r = add(solr, [{k: v for k, v in doc.items() if k != "index_id"}])
    assert r.status_code == 400 and "uniqueKey" in r.json()["error"]["msg"]
    assert select(solr, q="*:*")["response"]["numFound"] == 0


def test_long_query_post_form(seeded: str) -> None:
    # pysolr._select POSTs form-encoded params when the query string exceeds 1024 chars
    labels = " OR ".join(f'"member-{i:04d}"' for i in range(120)) + ' OR "public"'
    body = {
        "q": "*:*",
        "fq": [f"+permission_labels:({labels})", "+state:active"],
        "fl": "name",
        "rows": 50,
        "wt": "json",
    }
    r = requests.post(
        seeded + "/select/",
        data=body,
        timeout=10,
        headers={"Content-type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["response"]["numFound"] == 4


def test_persistence_across_restart(tmp_path: Path) -> None:
    server, url = _start(tmp_path)
    try:
        assert add(url, [pkg_doc("kept", title="Kept", tags=["a"])]).status_code == 200
        # added without commit: still persisted when the server is closed
        assert (
            add(url, [pkg_doc("late", title="Late", tags=["b"])], commit=False).status_code == 200
        )
    finally:
        _stop(server)
    assert (tmp_path / "ckan.json").exists()
    server, url = _start(tmp_path)
    try:
        res = select(url, q="*:*", fl="name", sort="name asc")
        assert [d["name"] for d in res["response"]["docs"]] == ["kept", "late"]
        xml_update(url, '<delete><query>name:"kept"</query></delete>', commit=True)
    finally:
        _stop(server)
    server, url = _start(tmp_path)
    try:
        assert [d["name"] for d in select(url, q="*:*", fl="name")["response"]["docs"]] == ["late"]
    finally:
        _stop(server)


def test_dismax_min_should_match_and_edismax(seeded: str) -> None:
    # mm "2<-1 5<80%": with 3 terms, any 2 of them suffice
    res = select(seeded, **package_search_params(q="street trees unicorn"))
    assert names(res) == ["trees"]
    res = select(seeded, **package_search_params(q="street unicorn dragon"))
    assert names(res) == []
    # edismax (explicit defType) accepts fielded clauses mixed with free text
    p = package_search_params(q="tags:environment street", defType="edismax", qf=QUERY_FIELDS)
    assert names(select(seeded, **p)) == ["trees"]


def test_bind_error_is_a_plain_oserror(solr: str) -> None:
    port = int(solr.split(":")[2].split("/")[0])
    with pytest.raises(OSError):
        serve("127.0.0.1", port, "/tmp/unused-standin-dir")
