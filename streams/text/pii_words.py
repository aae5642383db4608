"""Word lists for :mod:`streams.text.pii_names`, written for it: titles, cues, and capitalised non-names.

``NOT_NAMES`` is spaCy's English stop-word list less the words that are also census first names (``will``,
``may``...), plus weekdays, months that are not names, greetings and sign-offs, and words that start
sentences or name things in support tickets, emails, CRM notes and code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from spacy.lang.en.stop_words import STOP_WORDS

__all__ = ["CUE_BEFORE", "NOT_NAMES", "TITLES"]

TITLES: Final = frozenset(
    [
        "Mr",
        "Mrs",
        "Ms",
        "Miss",
        "Mx",
        "Dr",
        "Prof",
        "Sir",
        "Madam",
        "Dame",
        "Lord",
        "Lady",
        "Herr",
        "Frau",
        "Mme",
        "Mlle",
        "Sr",
        "Sra",
        "Srta",
        "Sig",
        "Sig.ra",
        "Signor",
        "Signora",
        "Dott",
        "Mevr",
        "Dhr",
        "Capt",
        "Rev",
        "Fr",
    ]
)

# Text right before a run of capitalised words that says the run is a person (matched on lower case).
CUE_BEFORE: Final = re.compile(
    r"(?<![a-z0-9])(?:follow up with|follow-up with|my name is|name|name is|names?\s*:|i'm|i am"
    r"|this is|it's|spoke (?:with|to)|talked to|met with"
    r"|contact(?: person)?:?|owner:?|logged by|introduced by|signed by|sent by"
    r"|written by|approved by|assigned to|referred by|holder:?|attn:?|patient:?|customer:?|client:?"
    r"|employee:?|applicant:?|tenant:?|author:?|friend|colleague|manager|boss|wife|husband|partner"
    r"|son|daughter|mother|father|mom|dad|brother|sister|cc:?|regards,?|thanks,?|thank you,?|cheers,?"
    r"|best,?|sincerely,?|--|—|(?<=\s)-|dear|hi|hello|hey|mr\.?|mrs\.?|ms\.?|dr\.?|prof\.?|sr\.?|sra\.?"
    r"|mme\.?|herr|frau|ask for|ask|named|called|from:|to:|verified by)[\s,:]*$"
)

_EXTRA_NOT_NAMES: Final = frozenset(
    line.strip()
    for line in (Path(__file__).parent / "data" / "pii" / "not_names.txt")
    .read_text("utf-8")
    .splitlines()
    if line.strip() and not line.startswith("#")
)

NOT_NAMES: Final = frozenset(
    (set(STOP_WORDS) - {"will", "may", "bill", "sue", "don", "mark", "pat", "per"})
    | _EXTRA_NOT_NAMES
)
