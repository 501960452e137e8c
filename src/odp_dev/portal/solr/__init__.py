"""Apache Solr 9 for the local portal: build once, write the `ckan` core, the command to run it.

Solr runs as Solr's own embedded Jetty server (`org.apache.solr.embedded.JettySolrRunner`,
artifact `solr-test-framework`), started by the small `Launcher.java` beside this file. Maven
resolves the jars once into `<project root>/.local/solr/` (the build, shared by every portal
home of the checkout):

    m2/              Maven's local repository (Solr and its dependencies, ~115 MB)
    classpath.args   `-cp …` for `java @classpath.args` (the launcher's classes and the jars)
    classes/         Launcher.class
    build.json       digest of pom.xml and Launcher.java (a change rebuilds)

The core lives in the portal home's `solr/` folder (`solr.xml`, `ckan/core.properties`,
`ckan/conf/`, `ckan/data/`): CKAN's own `schema.xml`, copied from the CKAN package installed in
the portal's venv, with one change — its `text` field type stems German (Snowball German2)
instead of English, as the portal's texts are German — plus the four float fields
ckanext-spatial's `solr-bbox` backend indexes (its documented fields, added the way CKAN's
official `ckan/ckan-solr` spatial image adds them), and the minimal `solrconfig.xml` of this
folder. When the schema changes, the index is rebuilt at the next start.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from odp_dev.portal import settings
from odp_dev.portal.procs import PortalError, require_binary, run

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
LAUNCHER_JAVA = HERE / "Launcher.java"
MAIN_CLASS = "odp_dev.portal.solr.Launcher"  # also how a running Solr is recognised (its cmdline)
BUILD_RELATIVE = Path(".local") / "solr"  # below the project root
MIN_JAVA = 11  # Solr 9 runs on Java 11 or newer

# ckanext-spatial's solr-bbox backend: the envelope of the `spatial` extra, as floats.
SPATIAL_FIELDS = ("minx", "maxx", "miny", "maxy")

Progress = Callable[[str], None]


# --------------------------------------------------------------------------- build


def _digest() -> str:
    digest = hashlib.sha256()
    for path in (POM, LAUNCHER_JAVA):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def java_version(java: str) -> int:
    """The feature version of `java` (17 for 17.0.15), from `java -version`."""
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise PortalError(f"cannot read the version of {java}: {(out.stderr or out.stdout)[:200]}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def require_java() -> str:
    """Absolute path of `java` (Java 11 or newer), else a PortalError with an install hint."""
    java = require_binary("java", "java")
    if (version := java_version(java)) < MIN_JAVA:
        raise PortalError(
            f"{java} is Java {version}; Solr 9 needs Java {MIN_JAVA} or newer: "
            "apt-get install openjdk-17-jdk-headless"
        )
    return java


class Build:
    """The compiled launcher and the resolved Solr jars of one checkout."""

    def __init__(self, root: Path) -> None:
        self.dir = root / BUILD_RELATIVE
        self.m2 = self.dir / "m2"
        self.classes = self.dir / "classes"
        self.args = self.dir / "classpath.args"
        self.marker = self.dir / "build.json"

    def current(self) -> bool:
        """Whether the build exists, matches pom.xml and Launcher.java, and its jars are there."""
        try:
            marker = json.loads(self.marker.read_text())
            jars = marker["jars"]
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return (
            marker.get("digest") == _digest()
            and (self.classes / "odp_dev" / "portal" / "solr" / "Launcher.class").is_file()
            and self.args.is_file()
            and all(Path(jar).is_file() for jar in jars)
        )

    def ensure(self, say: Progress) -> bool:
        """Resolve the jars (offline when Maven's repository has them) and compile the launcher;
        nothing to do when the build is current. True if something was built."""
        if self.current():
            return False
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "build.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another checkout session may be building
            if self.current():
                return False
            require_java()
            javac = require_binary("javac", "javac")
            mvn = require_binary("mvn")
            cp_file = self.dir / "classpath.txt"
            resolve = [
                mvn, "-q", "-B", "-f", str(POM), f"-Dmaven.repo.local={self.m2}",
                "dependency:build-classpath", f"-Dmdep.outputFile={cp_file}",
            ]  # fmt: skip
            cached = self.m2.is_dir()
            if cached:
                say("resolving Apache Solr's jars from the local Maven repository")
                try:
                    run([*resolve[:2], "-o", *resolve[2:]], what="mvn -o", cwd=self.dir)
                except PortalError:
                    cached = False  # something is missing from it: ask Maven Central
            if not cached:
                say("downloading Apache Solr's jars from Maven Central (about 115 MB, once)")
                run(resolve, what="mvn dependency:build-classpath", cwd=self.dir, timeout=1800)
            jars = [jar for jar in cp_file.read_text().strip().split(":") if jar]
            say("compiling the Solr launcher")
            fresh = self.dir / "classes.new"
            shutil.rmtree(fresh, ignore_errors=True)
            run([javac, "-nowarn", "-d", str(fresh), "-cp", ":".join(jars), str(LAUNCHER_JAVA)],
                what="javac Launcher.java", cwd=self.dir)  # fmt: skip
            shutil.rmtree(self.classes, ignore_errors=True)
            fresh.rename(self.classes)
            classpath = ":".join([str(self.classes), *jars])
            self.args.write_text(f'-cp "{classpath}"\n')
            self.marker.write_text(json.dumps({"digest": _digest(), "jars": jars}) + "\n")
            return True

    def command(self, port: int, solr_home: Path, logs: Path) -> list[str]:
        """`java … odp_dev.portal.solr.Launcher PORT SOLR_HOME`: loopback only, a small heap, the
        serial collector and only the C1 compiler (a dev index is small: start-up matters more
        than peak speed; ready in ~3.5 s instead of ~6 s on two cores)."""
        return [
            require_java(), f"-Xmx{settings.SOLR_HEAP}", "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            f"-Dlog4j2.configurationFile={HERE / 'log4j2.xml'}",
            f"-Dsolr.log.dir={logs}", f"-Dsolr.install.dir={self.dir}",
            f"@{self.args}", MAIN_CLASS, str(port), str(solr_home),
        ]  # fmt: skip


# --------------------------------------------------------------------------- the core


def ckan_schema_source(venv: Path) -> Path:
    """CKAN's schema.xml inside the CKAN package installed in `venv`."""
    found = sorted(venv.glob("lib/python*/site-packages/ckan/config/solr/schema.xml"))
    if not found:
        raise PortalError(f"CKAN's solr/schema.xml not found in {venv}: reinstall the portal")
    return found[-1]


_ENGLISH_STEMMER = 'class="solr.SnowballPorterFilterFactory" language="English"'


def german_stemming(ckan_schema: str) -> str:
    """CKAN's schema with its `text` field type stemming German (settings.SOLR_STEMMER_LANGUAGE)
    instead of English: the one filter CKAN's schema names a language in, in the index and the
    query analyzer alike. Everything else (tokenizer, word splitting, folding) stays CKAN's."""
    if ckan_schema.count(_ENGLISH_STEMMER) != 2:
        raise PortalError("CKAN's schema.xml does not have the two English Snowball filters of "
                          "its `text` field type: unknown schema layout")
    german = _ENGLISH_STEMMER.replace("English", settings.SOLR_STEMMER_LANGUAGE)
    return ckan_schema.replace(_ENGLISH_STEMMER, german)


def schema_xml(ckan_schema: str) -> str:
    """CKAN's schema, stemming German, with ckanext-spatial's bounding-box fields added inside
    <fields>."""
    if "</fields>" not in ckan_schema:
        raise PortalError("CKAN's schema.xml has no </fields>: unknown schema layout")
    ckan_schema = german_stemming(ckan_schema)
    lines = "".join(
        f'    <field name="{name}" type="float" indexed="true" stored="true" />\n'
        for name in SPATIAL_FIELDS
    )
    added = (
        "    <!-- added by odp_dev.portal: ckanext-spatial's solr-bbox search backend -->\n"
        + lines
    )
    return ckan_schema.replace("</fields>", added + "</fields>", 1)


def core_files(ckan_schema: str) -> dict[str, str]:
    """The Solr home's files, relative path → text."""
    core = settings.SOLR_CORE
    return {
        "solr.xml": (HERE / "solr.xml").read_text(),
        f"{core}/core.properties": f"name={core}\n",
        f"{core}/conf/solrconfig.xml": (HERE / "solrconfig.xml").read_text(),
        f"{core}/conf/schema.xml": schema_xml(ckan_schema),
        f"{core}/conf/synonyms.txt": "",  # CKAN's schema names both; empty is Solr's default
        f"{core}/conf/protwords.txt": "",
    }


def write_core(solr_home: Path, ckan_schema: str) -> bool:
    """Write the Solr home's files where they differ; True if any changed."""
    changed = False
    for relative, text in core_files(ckan_schema).items():
        path = solr_home / relative
        if path.is_file() and path.read_text() == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        changed = True
    return changed


def index_exists(solr_home: Path) -> bool:
    """Whether the core has an index on disk (False before Solr's first start)."""
    return (solr_home / settings.SOLR_CORE / "data" / "index").is_dir()


def core_url(port: int) -> str:
    return f"http://{settings.HOST}:{port}/solr/{settings.SOLR_CORE}"


def answers(port: int) -> bool:
    """Whether the core answers a search (what CKAN's `is_available` asks)."""
    try:
        with urllib.request.urlopen(
            f"{core_url(port)}/select?q=*:*&rows=0&wt=json", timeout=2
        ) as resp:
            return resp.status == 200 and "responseHeader" in json.load(resp)
    except (OSError, ValueError, urllib.error.URLError):
        return False
