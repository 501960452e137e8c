"""A pipeline definition whose `[source]` holds a URL with userinfo (`user:password@`) is refused
before anything is requested: a one-line ConfigError (exit 2) naming the file and key, telling
the officer to use `[source.auth]`, with the password not in the message."""

from __future__ import annotations

import dataclasses

import pytest

from odp.errors import ConfigError
from odp.sources import make_resource
from odp.spec import load_dataset
from tests.helpers import REPO

VVO = ("https://raw.githubusercontent.com/kiliankoe/vvo/9a8732851291c67759d292e08868871fed094176/"
       "stations/stations.csv")
WITH_USERINFO = VVO.replace("https://", "https://opendata:S3CRETPW@")


def _with_source(name: str, **change: object):
    spec = load_dataset(name, REPO)
    return dataclasses.replace(spec, source={**spec.source, **change})


def test_a_url_with_user_and_password_is_refused_naming_file_key_and_source_auth():
    with pytest.raises(ConfigError) as refused:
        make_resource(_with_source("transit-stops-vvo", url=WITH_USERINFO))
    message = str(refused.value)
    assert "transit-stops-vvo.toml: [source] url: https://***@raw.githubusercontent.com/" in message
    assert "[source.auth]" in message and "basic_password_env" in message
    assert "S3CRETPW" not in message and "opendata" not in message
    assert "\n" not in message and refused.value.exit_code == 2


def test_a_url_with_userinfo_in_a_list_of_files_is_refused_naming_its_place():
    spec = load_dataset("air-quality-dresden", REPO)
    files = [dict(f) for f in spec.source["files"]]
    files[1]["url"] = files[1]["url"].replace("https://", "https://token@")
    with pytest.raises(ConfigError, match=r"\[source\] files\[1\]\.url: https://\*\*\*@"):
        make_resource(dataclasses.replace(spec, source={**spec.source, "files": files}))


@pytest.mark.parametrize("name", ["transit-stops-vvo", "air-quality-dresden",
                                  "elbe-water-level-dresden", "schools-dresden"])
def test_definitions_without_userinfo_pass_the_check(name):
    from odp.sources import refuse_userinfo

    refuse_userinfo(load_dataset(name, REPO).source, "[source]")
    # an @ elsewhere is no userinfo: in a path, a query or plain text
    refuse_userinfo({"url": "https://host/a@b?mail=x@y", "note": "ask opendata@city.de",
                     "path": "data/x@y.csv"}, "[source]")
