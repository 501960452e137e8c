"""The `dcatap_de` RDF profile: what DCAT-AP.de 2.0 adds to ckanext-dcat's DCAT-AP 2 output.

Runs after `euro_dcat_ap_2` and `euro_dcat_ap_scheming` (ckanext.dcat.rdf.profiles) and
  * adds the dcatde properties of the dataset schema: contributorID, politicalGeocodingURI and
    -LevelURI, geocodingDescription, originator;
  * gives every distribution the dataset's licence IRI and dcatde:licenseAttributionByText;
  * turns CKAN's format labels and MIME types into the IRIs DCAT-AP.de asks for (EU file
    types, IANA media types);
  * links the dataset's Table Schema (served by the `odp` plugin) as dct:conformsTo;
  * gives the catalog a publisher, a theme taxonomy and a language IRI.
"""

from __future__ import annotations

import re
from typing import Any

from ckan.plugins import toolkit
from ckanext.dcat.profiles.base import (
    DCAT,
    DCT,
    FOAF,
    RDF,
    VCARD,
    CleanedURIRef,
    RDFProfile,
)
from ckanext.dcat.utils import catalog_uri, resource_uri
from rdflib import BNode, Literal, Namespace, URIRef

DCATDE = Namespace("http://dcat-ap.de/def/dcatde/")
FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/"
LANGUAGE = "http://publications.europa.eu/resource/authority/language/"
DATA_THEME = "http://publications.europa.eu/resource/authority/data-theme"
MEDIA_TYPES = "https://www.iana.org/assignments/media-types/"
PUBLISHER_TYPE = "http://purl.org/adms/publishertype/"

# CKAN format label (upper case) -> EU file-type code.
FILE_TYPES = {
    "CSV": "CSV", "JSON": "JSON", "GEOJSON": "GEOJSON", "PARQUET": "PARQUET", "XML": "XML",
    "XLSX": "XLSX", "XLS": "XLS", "ODS": "ODS", "PDF": "PDF", "ZIP": "ZIP", "HTML": "HTML",
    "TXT": "TXT", "TSV": "TSV", "GML": "GML", "KML": "KML", "SHP": "SHP", "WMS": "WMS_SRVC",
    "WFS": "WFS_SRVC", "RDF": "RDF_XML", "TTL": "RDF_TURTLE", "JSON-LD": "JSON_LD",
}
# EU file-type code -> IANA media type, for resources without a MIME type of their own.
MEDIA_FOR_TYPE = {
    "CSV": "text/csv", "JSON": "application/json", "GEOJSON": "application/geo+json",
    "PARQUET": "application/vnd.apache.parquet", "XML": "application/xml",
    "PDF": "application/pdf", "ZIP": "application/zip", "HTML": "text/html",
}
LANGUAGES = {"de": "DEU", "en": "ENG", "fr": "FRA", "pl": "POL", "cs": "CES"}


def _media_iri(value: str) -> URIRef | None:
    """`text/csv` or any IANA media-type IRI -> the https IRI DCAT-AP.de checks for."""
    text = value.strip().split("media-types/", 1)[-1]
    return URIRef(MEDIA_TYPES + text) if re.fullmatch(r"[\w.+-]+/[\w.+-]+", text) else None


def _first(value: Any) -> dict[str, Any]:
    """The first entry of a repeating-subfield value (a list of dicts), or {}."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return value[0]
    return {}


def _list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    return [v for v in value or [] if v]


class DCATAPdeProfile(RDFProfile):
    def graph_from_dataset(self, dataset_dict: dict[str, Any], dataset_ref: Any) -> None:
        g = self.g
        g.bind("dcatde", DCATDE)
        if contributor := dataset_dict.get("contributor_id"):
            g.add((dataset_ref, DCATDE.contributorID, CleanedURIRef(contributor)))
        for uri in _list(dataset_dict.get("political_geocoding_uri")):
            g.add((dataset_ref, DCATDE.politicalGeocodingURI, CleanedURIRef(uri)))
        if level := dataset_dict.get("political_geocoding_level_uri"):
            g.add((dataset_ref, DCATDE.politicalGeocodingLevelURI, CleanedURIRef(level)))
        if text := dataset_dict.get("geocoding_description"):
            g.add((dataset_ref, DCATDE.geocodingDescription, Literal(text)))
        originator = _first(dataset_dict.get("originator"))
        if originator.get("name"):
            agent = BNode()
            g.add((agent, RDF.type, FOAF.Agent))
            g.add((agent, FOAF.name, Literal(originator["name"])))
            if originator.get("url"):
                g.add((agent, FOAF.homepage, CleanedURIRef(originator["url"])))
            g.add((dataset_ref, DCATDE.originator, agent))

        # DCAT-AP.de: dct:identifier is a literal (ckanext-dcat makes a URL an IRI).
        for identifier in list(g.objects(dataset_ref, DCT.identifier)):
            if isinstance(identifier, URIRef):
                g.remove((dataset_ref, DCT.identifier, identifier))
                g.add((dataset_ref, DCT.identifier, Literal(str(identifier))))
        # With the schema's `contact` field, ckanext-dcat still adds a second contact point
        # from maintainer/maintainer_email (a vcard:Organization): keep the one from `contact`.
        if _first(dataset_dict.get("contact")):
            for node in list(g.objects(dataset_ref, DCAT.contactPoint)):
                if (node, RDF.type, VCARD.Kind) not in g:
                    g.remove((dataset_ref, DCAT.contactPoint, node))
                    g.remove((node, None, None))

        schema_url = self._table_schema_url(dataset_dict)
        if schema_url:
            g.add((dataset_ref, DCT.conformsTo, schema_url))
            g.add((schema_url, RDF.type, DCT.Standard))
        for resource in dataset_dict.get("resources", []):
            self._distribution(dataset_dict, resource, schema_url)

    def _table_schema_url(self, dataset_dict: dict[str, Any]) -> URIRef | None:
        if not dataset_dict.get("table_schema") or not dataset_dict.get("name"):
            return None
        site = toolkit.config.get("ckan.site_url", "").rstrip("/")
        return URIRef(f"{site}/dataset/{dataset_dict['name']}/table-schema.json")

    def _distribution(
        self, dataset_dict: dict[str, Any], resource: dict[str, Any], schema_url: URIRef | None
    ) -> None:
        g = self.g
        ref = CleanedURIRef(resource_uri(resource))
        license_uri = resource.get("license") or dataset_dict.get("license_uri")
        if license_uri and (ref, DCT.license, None) not in g:
            g.add((ref, DCT.license, CleanedURIRef(license_uri)))
            g.add((CleanedURIRef(license_uri), RDF.type, DCT.LicenseDocument))
        if attribution := dataset_dict.get("license_attribution_by_text"):
            g.add((ref, DCATDE.licenseAttributionByText, Literal(attribution)))
        for language in _list(dataset_dict.get("language")):
            g.add((ref, DCT.language, CleanedURIRef(language)))

        code = None
        for fmt in list(g.objects(ref, DCT["format"])):
            if isinstance(fmt, Literal):
                g.remove((ref, DCT["format"], fmt))
                code = FILE_TYPES.get(str(fmt).strip().upper())
                if code:
                    g.add((ref, DCT["format"], URIRef(FILE_TYPE + code)))
                    g.add((URIRef(FILE_TYPE + code), RDF.type, DCT.MediaTypeOrExtent))
            elif str(fmt).startswith(FILE_TYPE):
                code = str(fmt)[len(FILE_TYPE):]
        for media in list(g.objects(ref, DCAT.mediaType)):
            g.remove((ref, DCAT.mediaType, media))
            if iri := _media_iri(str(media)):
                g.add((ref, DCAT.mediaType, iri))
                g.add((iri, RDF.type, DCT.MediaType))
        if (ref, DCAT.mediaType, None) not in g and code in MEDIA_FOR_TYPE:
            iri = URIRef(MEDIA_TYPES + MEDIA_FOR_TYPE[code])
            g.add((ref, DCAT.mediaType, iri))
            g.add((iri, RDF.type, DCT.MediaType))

        if schema_url and resource.get("odp_role") in ("table", "parquet", "geojson"):
            g.add((ref, DCT.conformsTo, schema_url))

    def graph_from_catalog(self, catalog_dict: dict[str, Any] | None, catalog_ref: Any) -> None:
        g, config = self.g, toolkit.config
        g.bind("dcatde", DCATDE)
        # ckanext-dcat writes the UI locale as a literal; DCAT-AP.de wants an EU language IRI.
        wanted = config.get("ckanext.odp.catalog_language")
        for language in list(g.objects(catalog_ref, DCT.language)):
            if isinstance(language, Literal):
                g.remove((catalog_ref, DCT.language, language))
                code = wanted or LANGUAGES.get(str(language).split("_")[0].lower())
                if code:
                    g.add((catalog_ref, DCT.language, URIRef(LANGUAGE + code)))
        g.add((catalog_ref, DCAT.themeTaxonomy, URIRef(DATA_THEME)))
        if (catalog_ref, DCT.publisher, None) not in g:
            name = config.get("ckanext.odp.catalog_publisher_name") or config.get(
                "ckan.site_title"
            )
            uri = config.get("ckanext.odp.catalog_publisher_uri") or catalog_uri() + "#publisher"
            agent = URIRef(uri)
            g.add((catalog_ref, DCT.publisher, agent))
            g.add((agent, RDF.type, FOAF.Agent))
            g.add((agent, FOAF.name, Literal(name)))
            kind = config.get("ckanext.odp.catalog_publisher_type", "LocalAuthority")
            g.add((agent, DCT.type, URIRef(PUBLISHER_TYPE + kind)))
