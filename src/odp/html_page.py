"""The frame every static HTML page of odp shares — the public situation page
(odp.indicators.page) and the KPI cockpit's status page (odp.operations.cockpit): German
(`lang="de"`), no script, nothing loaded from the internet, the page's title as its heading and
one base style (text, heading, meta line, tables). A page brings its own style rules and its
body (`templates/frame.html` beside this module; the pages' own templates beside theirs).
"""

from __future__ import annotations

import html
from pathlib import Path
from string import Template

FRAME = Path(__file__).parent / "templates" / "frame.html"


def page(title: str, generator: str, style: str, body: str) -> str:
    """The whole page: `title` and `generator` as plain text (escaped here), `style` as CSS
    rules and `body` as HTML after the heading, both taken as they are."""
    return Template(FRAME.read_text(encoding="utf-8")).substitute(
        title=html.escape(title), generator=html.escape(generator), style=style, body=body)
