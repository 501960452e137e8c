"""Address normaliser on real Dresden address strings, geocoding and reverse geocoding against
the register derived from real Dresden addresses (reference/dresden/addresses.csv)."""

from __future__ import annotations

import pandas as pd
import pytest

from odp.georeference.geocode import (
    AddressRegister,
    normalise_number,
    normalise_street,
    split_address,
)
from tests.helpers import REPO

REGISTER = AddressRegister.from_csv(REPO / "reference" / "dresden" / "addresses.csv")


@pytest.mark.parametrize(("a", "b"), [
    # car parks (ParkAPI) vs the same streets elsewhere
    ("Kötschenbroder Str.", "Kötschenbroder Straße"),
    ("Magdeburger Str.", "magdeburger strasse"),
    ("Prager Straße", "PRAGER  STRASSE"),
    # VVO stops write both forms
    ("Ammon-/Budapester Str.", "Ammon-/Budapester Straße"),
    ("Prof.-Ricker-Straße", "Prof. Ricker Str."),
    ("Straße des 17. Juni", "Strasse des 17. Juni"),
    # schools (Schuldatenbank)
    ("Fidelio-F.-Finke-Straße", "Fidelio F. Finke Strasse"),
    ("Georg-Nerlich-Straße", "Georg Nerlich Str."),
    ("Dr.-Külz-Ring", "Doktor-Kuelz-Ring"),
    ("Große Meißner Straße", "Grosse Meissner Str"),
])
def test_spellings_of_one_street_normalise_alike(a, b):
    assert normalise_street(a) == normalise_street(b)


def test_different_streets_stay_different():
    assert normalise_street("Prager Straße") != normalise_street("Pragerstraße 1")
    assert normalise_street("Strehlener Straße") == "strehlenerstrasse"
    assert normalise_street("Struvestraße") == "struvestrasse"


@pytest.mark.parametrize(("text", "street", "number"), [
    ("Prager Straße 8 - 10", "Prager Straße", "8-10"),           # ParkAPI
    ("An der Frauenkirche 12a", "An der Frauenkirche", "12a"),   # ParkAPI
    ("Seifhennersdorfer Straße 2a", "Seifhennersdorfer Straße", "2a"),  # school
    ("Fröbelstraße 1-3", "Fröbelstraße", "1-3"),                 # school
    ("Terrassenufer", "Terrassenufer", ""),                      # ParkAPI, no number
    ("Straße des 17. Juni 5", "Straße des 17. Juni", "5"),
    ("Am Lehmberg 28 A", "Am Lehmberg", "28a"),
])
def test_addresses_split_into_street_and_house_number(text, street, number):
    assert split_address(text) == (street, number)


def test_house_numbers_with_suffixes_and_ranges():
    assert normalise_number("12 A") == normalise_number("12a") == "12a"
    assert normalise_number("12 - 14") == "12-14"
    assert normalise_number(None) == ""


def test_geocode_reports_quality_and_never_invents_a_coordinate():
    streets = pd.Series(["Struvestraße 11", "Struvestr. 11", "Fröbelstraße 2", "Struvestraße 999",
                         "Nirgendwostraße 1", "Am Lehmberg 28 A", None])
    got = REGISTER.geocode(streets)
    assert list(got["geocode_quality"]) == ["exact", "normalised", "normalised", "street-only",
                                            "none", "normalised", "none"]
    # Struvestraße 11 from the Schuldatenbank: 13.74073677, 51.041075923
    assert got.loc[0, "longitude"] == pytest.approx(13.7407368, abs=1e-7)
    assert got.loc[1, "latitude"] == pytest.approx(51.0410759, abs=1e-7)
    assert got.loc[2, "matched_address"] == "Fröbelstraße 1-3"  # 2 lies in the range 1-3
    assert got.loc[[3, 4, 6], "longitude"].isna().all()  # street-only and none: no coordinate


def test_separate_number_and_postcode_columns():
    got = REGISTER.geocode(pd.Series(["Hepkestraße", "Hepkestraße"]), pd.Series(["26", "28"]),
                           pd.Series(["01309", "01099"]))
    assert got.loc[0, "geocode_quality"] == "exact"
    assert got.loc[1, "geocode_quality"] == "none"  # Hepkestraße 28 is in 01309, not 01099


def test_reverse_gives_the_nearest_register_address_within_reach():
    # 30 m east of the school at Struvestraße 11; and a point in the Dresdner Heide (far away).
    got = REGISTER.reverse(pd.Series([13.7411, 13.8500]), pd.Series([51.041076, 51.1000]))
    assert got.loc[0, "nearest_address"] == "Struvestraße 11"
    assert 20 < got.loc[0, "nearest_address_m"] < 40
    assert pd.isna(got.loc[1, "nearest_address"])
