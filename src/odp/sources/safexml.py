"""Every XML document a source reads is parsed here, with DTDs, entities and network access off
by rule (defusedxml over the standard library's expat parser):

* a DOCTYPE declaration is refused outright — no source format the project reads (WFS/GML,
  OGC exception reports) uses one, and a DTD is where entity expansion ("billion laughs") and
  external entities (XXE: local files, URLs) are declared;
* an entity declaration or an external reference met anyway is refused (a second rule, should
  the first ever be relaxed);
* nothing is fetched: expat never loads an external DTD or entity here.

Each refusal is a one-line SourceError naming where the document came from. A document cut
short is told apart from a malformed one (odp.sources.complete.xml_error).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import defusedxml.ElementTree as SafeET
from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden

from odp.errors import SourceError
from odp.sources.complete import xml_error

_ENTITY = re.compile(rb"<!ENTITY\s+%?\s*([\w.:-]+)")
_HEAD = 1 << 16  # bytes searched for entity declarations to name in the message


def parse_xml(body: bytes | str, where: str) -> ET.Element:
    """The document's root element; SourceError for a DOCTYPE, entities, an external reference,
    a cut or a malformed document."""
    try:
        return SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True)
    except DTDForbidden as exc:
        raise SourceError(f"{where}: XML with a DOCTYPE ('{exc.name}'{_entities(body)}) is "
                          "refused: DTDs, entities and external references are off") from None
    except EntitiesForbidden as exc:
        raise SourceError(f"{where}: XML declaring the entity '{exc.name}' is refused: "
                          "entities are off") from None
    except ExternalReferenceForbidden as exc:
        raise SourceError(f"{where}: XML referring to the external entity '{exc.sysid}' is "
                          "refused: external references are off") from None
    except ET.ParseError as exc:
        raise xml_error(exc, where) from None


def _entities(body: bytes | str) -> str:
    """', declaring the entities a, b' for the message, when the DTD declares any."""
    head = body[:_HEAD]
    data = head.encode("utf-8", "replace") if isinstance(head, str) else head
    names = list(dict.fromkeys(m.decode("ascii", "replace") for m in _ENTITY.findall(data)))
    if not names:
        return ""
    shown = ", ".join(names[:3]) + (" …" if len(names) > 3 else "")
    return f", declaring the entities {shown}"
