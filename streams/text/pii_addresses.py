"""Street addresses for :mod:`streams.text.pii`: patterns over street-type words, no model.

Three shapes, each needing a house number so that "Place your order" or "Main Street" alone are not
addresses:
- number first, then 1-4 words, then a street suffix (the USPS Publication 28 suffix names and their
  common abbreviations, plus UK ones: Close, Rise, Parade...): ``276 Yukon Bypass``, ``12 N 5th St.``;
- a street-type word first (French, Italian, Spanish, Portuguese: rue, via, viale, calle, rua...) with a
  number before or after: ``12 rue de la Paix``, ``Calle Mayor, 5``;
- a German/Dutch compound ending in a street word (-straße, -weg, -platz, -straat, -laan...) and a
  number: ``Salzachstraße 276``.
Each may go on with a unit (``Apt 4B``, ``Suite 200``, ``#12``) and a locality (``, Folsom, NY 17432``,
``, 80174 Vetschau``, ``, London SW1A 1AA``), which is part of the span.
Misses: addresses without a house number, PO boxes, and street names without one of the listed words.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from streams.text.findings import PiiType
from streams.text.pii_patterns import Candidate

__all__ = ["address_candidates"]

_SUFFIX_WORDS: Final = (
    "alley annex arcade avenue bayou beach bend bluffs? bottom boulevard branch bridge brooks? "
    "burgs? bypass camp canyon cape causeway centers? circles? cliffs? club commons? corners? "
    "course courts? coves? creek crescent crest crossing crossroads? curve dale dam divide "
    "drives? estates? expressway extensions? falls? ferry fields? flats? fords? forest forges? "
    "forks? fort freeway gardens? gateway glens? greens? groves? harbors? haven heights highway "
    "hills? hollow inlet islands? isle junctions? keys? knolls? lakes? land landing lane lights? "
    "loaf locks? lodge loop mall manors? meadows? mews mills? mission motorway mount mountains? "
    "neck orchard oval overpass parks? parkways? pass passage path pike pines? place plains? "
    "plaza points? ports? prairie radial ramp ranch rapids? rest ridges? river roads? route row "
    "rue run shoals? shores? skyway springs? spurs? squares? station stravenue stream streets? "
    "summit terrace throughway trace track trafficway trail tunnel turnpike underpass unions? "
    "valleys? viaduct views? villages? ville vista walks? wall ways? wells? close rise parade "
    "wynd st ave av blvd rd dr ln ct pl sq ter terr pkwy hwy cir trl cres expy fwy aly byp ctr "
    "crk cv hts jct ldg mnr pt rdg tpke xing "
)
_SUFFIXES: Final = tuple(_SUFFIX_WORDS.split())
_SUFFIX: Final = "(?:" + "|".join(s[0].upper() + s[1:] for s in _SUFFIXES) + r")\b\.?"
_CAP: Final = r"[A-ZÀ-ÖØ-Þ][\wÀ-ÿ'\u2019.\-]*"
_WORD: Final = rf"(?:{_CAP}|\d{{1,3}}(?:st|nd|rd|th)|[NSEW]\.?|(?:NE|NW|SE|SW)|of|the|de|la)"
_UNIT: Final = (
    r"(?:,?\s(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Floor|Fl\.?|Room|Rm\.?)\s?[\w\-]{1,6}"
    r"|,?\s?#\s?[\w\-]{1,6})"
)
_TOWN: Final = rf"{_CAP}(?:[ \-/]{_CAP}){{0,3}}"
_LOCALITY: Final = (
    rf"(?:,?\s{_TOWN},?\s(?:[A-Z]{{2}}|[A-Z][a-z]+)\s\d{{5}}(?:-\d{{4}})?"  # Folsom, NY 17432
    rf"|,\s(?:[A-Z]{{1,2}}-)?\d{{4,5}}(?:\s?[A-Z]{{2}})?\s{_TOWN}"  # , 80174 Vetschau
    rf"|,\s{_TOWN},?\s[A-Z]{{1,2}}\d[A-Z\d]?\s\d[A-Z]{{2}}"  # , London SW1A 1AA
    rf"|,\s[A-Z]{{1,2}}\d[A-Z\d]?\s\d[A-Z]{{2}}\s{_TOWN}"  # , SW1A 1AA London
    rf"|,\s{_TOWN}\s\d{{4,5}}(?:-\d{{3}})?)"  # , Martigues 17432
)
_TYPE_FIRST_WORDS: Final = (
    "rue|avenue|av\\.|boulevard|bd|place|parc|square|cour|promenade|prom\\.|venelle|chemin|allée|impasse|quai|cours|via|viale|piazza|piazzale|"
    "corso|vicolo|largo|calle|carretera|ronda|avenida|avda\\.|paseo|plaza|camino|carrer|rua|rúa|laan|travessa|alameda|praça"
)
_PARTICLES: Final = r"(?:de|del|della|degli|dei|delle|di|da|do|dos|das|du|des|la|le|les|l'|d'|e|y)"
_TYPE_FIRST_NAME: Final = rf"{_CAP}(?:\s(?:{_PARTICLES}\s)*{_CAP}){{0,3}}"
_COMPOUND: Final = (
    r"straße|strasse|str\.|weg|platz|allee|gasse|ring|damm|ufer|chaussee|steig|"
    r"pfad|straat|laan|plein|gracht|kade|dijk|singel|steeg|markt|hof"
)

_NUMBER_FIRST: Final = re.compile(
    r"\d(?<![\w\-/.]\d)(?:"
    rf"(?:\d{{0,4}}[a-z]?,?\s)(?i:{_TYPE_FIRST_WORDS})\s(?:{_PARTICLES}\s)*{_TYPE_FIRST_NAME}"
    rf"|\d{{0,5}}[A-Za-z]?\s(?:{_WORD}\s){{0,4}}{_SUFFIX}(?:\s[NSEW]{{1,2}}\b)?"
    rf")(?:{_UNIT})?(?:{_LOCALITY})?"
)
_WORD_FIRST: Final = re.compile(
    r"(?<![\w\-/.])(?:"
    rf"(?i:{_TYPE_FIRST_WORDS})\s(?:{_PARTICLES}\s)*{_TYPE_FIRST_NAME},?\s\d{{1,5}}[a-z]?\b"
    rf"|[A-ZÄÖÜ][\wäöüß\-]*(?:[ ](?=[A-ZÄÖÜ]))?(?i:{_COMPOUND})\s\d{{1,4}}[a-z]?\b"
    rf")(?:{_UNIT})?(?:{_LOCALITY})?"
)
# Lower-case words one of which a word-first address holds (a cheap test before its regex).
_WORD_FIRST_HINTS: Final = (
    *(w.rstrip("\\.") for w in _TYPE_FIRST_WORDS.split("|")),
    *(w.rstrip("\\.") for w in _COMPOUND.split("|")),
)


def address_candidates(text: str) -> Iterator[Candidate]:
    """Street addresses in ``text`` (a house number and a street word are required)."""
    lowered = text.lower()
    word_first = any(hint in lowered for hint in _WORD_FIRST_HINTS)
    for pattern in (_NUMBER_FIRST, _WORD_FIRST) if word_first else (_NUMBER_FIRST,):
        yield from _matches(pattern, text)


def _matches(pattern: re.Pattern[str], text: str) -> Iterator[Candidate]:
    for m in pattern.finditer(text):
        end = m.end()
        while end > m.start() and text[end - 1] in ",. ":
            end -= 1
        yield PiiType.STREET_ADDRESS, m.start(), end, 0.88
