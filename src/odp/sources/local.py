"""Local files instead of URLs, for officers who receive a file by e-mail or on a share.

Every source type that reads from a URL also reads a local file:

* single-file sources (`tabular`, `json_records`, `ogcapi_features`, `wfs`): `path = "…"` in
  `[source]` (or in an entry of `files`) instead of `url`;
* API sources (`pegelonline`, `pegelonline_gauges`, `dwd_cdc`, `sensor_community`): their
  `base_url`/`feed_url`/`archive_url` may name a file or a folder of the project instead of
  `https://…`: a request then reads the file at the request's path below that folder (its
  query is not part of the name), e.g. `base_url = "data/pegelonline"` answers
  `…/stations/UUID/W/measurements.json` from `data/pegelonline/stations/UUID/W/measurements.json`;
  a missing day file of a local `archive_url` (sensor.community) is a day without data, as the
  server's 404;
* `sensorthings`: `path = "…"` names a folder of the service's saved answers; the answers' absolute
  links (navigation, self and next links) are read inside it (odp.sources.sensorthings).

A relative path is relative to the project (the folder holding `pipelines/`), never to the
working directory. A missing file is a SourceError naming the dataset and the file; `path` and
`url` together are a ConfigError (which one is meant?).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from odp.errors import ConfigError, SourceError

REMOTE_SCHEMES = ("http", "https")


def resolve(path: str | Path) -> Path:
    """A path as the project reads it: absolute, or relative to the project root."""
    from odp.spec import project_root

    file = Path(path).expanduser()
    return file if file.is_absolute() else project_root() / file


def local_file(dataset: str, spec: Mapping[str, Any], where: Any = None) -> Path | None:
    """The existing file a `[source]` table (or one of its `files`) names by `path`; None when it
    names none (the source reads its URL). `where` (the definition file) names the config."""
    path = spec.get("path")
    if not path:
        return None
    if spec.get("url"):
        raise ConfigError(f"{where or dataset}: [source] has both 'url' and 'path' "
                          f"({spec['url']!r}, {path!r}): keep one")
    if not isinstance(path, str):
        raise ConfigError(f"{where or dataset}: [source] path: a text is needed (got {path!r})")
    file = resolve(path)
    if not file.is_file():
        raise SourceError(f"{dataset}: {file}: file not found ([source] path = {path!r})")
    return file


def is_local(url: str) -> bool:
    """Whether a source URL names a local file (no http/https scheme: a path or file://)."""
    scheme = urlsplit(url).scheme.lower()
    return scheme not in REMOTE_SCHEMES and (scheme in ("", "file") or len(scheme) == 1)


def local_path(url: str) -> Path:
    """The file a local source URL names: `file:///abs/x.json`, `data/x.json` (query dropped)."""
    parts = urlsplit(url)
    if parts.scheme.lower() == "file":
        return Path(unquote(parts.path))
    if len(parts.scheme) == 1:  # a Windows drive letter, C:/…
        return Path(url.split("?", 1)[0])
    return resolve(unquote(url.split("?", 1)[0]))


def read_local(dataset: str, url: str) -> bytes:
    """The bytes of the local file a source URL names (SourceError naming it when missing)."""
    file = local_path(url)
    try:
        return file.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise SourceError(f"{dataset}: {file}: file not found (local source {url!r})") from None


def local_response(dataset: str, url: str) -> Any:
    """A `requests.Response` (status 200, no validators) holding a local file's bytes, so the
    source code that parses HTTP answers reads local files unchanged."""
    import requests

    response = requests.Response()
    response.status_code = 200
    response.url = url
    response._content = read_local(dataset, url)
    response._content_consumed = True
    response.encoding = "utf-8"
    return response
