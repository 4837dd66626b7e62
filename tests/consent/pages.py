"""Reading staff pages in tests: a table's rows as the words of their cells,
and the messages a response carries."""

import re
from html.parser import HTMLParser


class _Tables(HTMLParser):
    def __init__(self, css_class: str):
        super().__init__()
        self.css_class = css_class
        self.depth = 0  # inside the wanted table while > 0
        self.in_body = False
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get("class") or "").split()
        if tag == "table" and (self.depth or self.css_class in classes):
            self.depth += 1
        if not self.depth:
            return
        if self.cell is not None:
            self.cell.append(" ")  # a tag inside a cell parts its words
        if tag == "tbody":
            self.in_body = True
        elif tag == "tr" and self.in_body:
            self.rows.append([])
        elif tag in ("td", "th") and self.in_body:
            self.cell = []

    def handle_endtag(self, tag):
        if not self.depth:
            return
        if tag == "table":
            self.depth -= 1
        elif tag == "tbody":
            self.in_body = False
        elif tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(re.sub(r"\s+", " ", "".join(self.cell)).strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def table_rows(html: str, css_class: str) -> list[list[str]]:
    """The body rows of the table with ``css_class``, each cell's text with
    its white space collapsed."""
    parser = _Tables(css_class)
    parser.feed(html)
    return parser.rows


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]
