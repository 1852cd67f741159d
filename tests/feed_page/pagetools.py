"""A small HTML reader on html.parser: tags, attributes and text, as a browser would see them."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]
    text: str = ""


@dataclass
class ParsedPage:
    doctype: str | None = None
    elements: list[Element] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)

    def find(self, tag: str, **attrs: str) -> list[Element]:
        return [e for e in self.elements if e.tag == tag and all(e.attrs.get(k) == v for k, v in attrs.items())]

    def by_id(self, ident: str) -> Element:
        found = [e for e in self.elements if e.attrs.get("id") == ident]
        assert len(found) == 1, f"expected one element with id {ident!r}, found {len(found)}"
        return found[0]

    def meta(self, name: str) -> str | None:
        found = self.find("meta", name=name)
        return found[0].attrs.get("content") if found else None

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.texts).split())


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = ParsedPage()
        self._open: list[Element] = []

    def handle_decl(self, decl: str) -> None:
        self.page.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs))
        self.page.elements.append(element)
        if tag not in {"meta", "br", "link", "img", "input", "hr"}:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._open and self._open[-1].tag == "style":
            self.page.styles.append(data)
            return
        for element in self._open:
            element.text += data
        self.page.texts.append(data)


def parse_page(markup: str) -> ParsedPage:
    reader = _Reader()
    reader.feed(markup)
    reader.close()
    return reader.page
