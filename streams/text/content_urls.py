"""URLs in a model's output whose domain is not on an allow list (issue 8, item 5, output side).

What counts as a URL: ``http(s)://`` and ``ftp://`` links (also inside markdown links ``[t](url)`` and
images ``![a](url)``), ``www.`` hosts, and bare domains followed by a path (``example.com/x``). A bare
host needs a real public suffix (tldextract's bundled Public Suffix List snapshot, never fetched:
``suffix_list_urls=()``, no cache directory), so ``file.txt/x`` is not a URL. E-mail addresses are not URLs.

A URL is known when its host equals an allowed domain or is a subdomain of one (``docs.python.org`` is
known under ``python.org``; ``python.org.evil.com`` is not). IP-address hosts are known only when listed.
Each distinct URL counts once.

Guarantees: pure and offline; never raises on any str; linear in the text length (the patterns have no
nested quantifiers). Accuracy: ``.venv/bin/python -m bench.bench_content`` (``unknown_url`` rows).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from typing import Final

__all__ = ["extract_urls", "host_of", "is_allowed_host", "normalize_domain", "unknown_url_count"]

# Scheme links; stop at whitespace, quotes, angle brackets and a closing parenthesis (markdown).
SCHEME_URL: Final = re.compile(r"\b(?:https?|ftp)://[^\s<>\"'`()\[\]{}]+", re.IGNORECASE)
WWW_URL: Final = re.compile(r"(?<![\w./@-])www\.[^\s<>\"'`()\[\]{}]+", re.IGNORECASE)
# A bare host with a path: labels, a dot-separated suffix, then '/'. Not preceded by '@' (e-mail) or '/'.
BARE_URL: Final = re.compile(
    r"(?<![\w./@:-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})/[^\s<>\"'`()\[\]{}]*",
    re.IGNORECASE,
)
TRAILING_PUNCTUATION: Final = ".,;:!?*_~"
DOMAIN_LABEL: Final = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
MAX_TEXT_CHARS: Final = 1_000_000  # longer texts are scanned up to here


@functools.cache
def _extractor() -> object:
    import tldextract

    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=())


def _has_public_suffix(host: str) -> bool:
    extract = _extractor()
    result = extract(host)  # type: ignore[operator]
    return bool(result.suffix) and bool(result.domain)


def normalize_domain(domain: str) -> str:
    """``domain`` lower-cased, without a trailing dot; ValueError naming it when it is not a host name."""
    if not isinstance(domain, str):
        raise ValueError(f"domain must be a string, got {domain!r}")
    cleaned = domain.strip().lower().rstrip(".")
    try:
        ipaddress.ip_address(cleaned)
        return cleaned
    except ValueError:
        pass
    labels = cleaned.split(".")
    if not cleaned or len(cleaned) > 253 or not all(DOMAIN_LABEL.match(label) for label in labels):
        raise ValueError(f"allowed domain must be a host name like 'example.com', got {domain!r}")
    return cleaned


def host_of(url: str) -> str | None:
    """The lower-cased host of a URL found by :func:`extract_urls` (scheme optional), or None."""
    rest = url.split("://", 1)[1] if "://" in url else url
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    authority = authority.rsplit("@", 1)[-1]  # drop user:password@
    ipv6 = authority.startswith("[")
    host = authority[1:].split("]", 1)[0] if ipv6 else authority.split(":", 1)[0]
    host = host.lower().rstrip(".")
    return host or None


def extract_urls(text: str) -> list[str]:
    """Distinct URLs in ``text``, in order of first appearance, trailing punctuation removed."""
    if not isinstance(text, str) or not text:
        return []
    text = text[:MAX_TEXT_CHARS]
    found: dict[str, None] = {}
    taken: list[tuple[int, int]] = []
    for pattern in (SCHEME_URL, WWW_URL, BARE_URL):
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(s <= start < e for s, e in taken):
                continue  # part of a URL already found (e.g. the host of a scheme link)
            url = match.group(0).rstrip(TRAILING_PUNCTUATION)
            if pattern is BARE_URL and not _has_public_suffix(match.group(1)):
                continue
            taken.append((start, end))
            found.setdefault(url, None)
    return list(found)


def is_allowed_host(host: str, allowed: Iterable[str]) -> bool:
    """Whether ``host`` is one of ``allowed`` (normalized domains) or a subdomain of one."""
    return any(host == domain or host.endswith("." + domain) for domain in allowed)


def unknown_url_count(text: str, allowed: Iterable[str]) -> int:
    """How many distinct URLs in ``text`` have a host outside ``allowed``; never raises."""
    allowed_domains = tuple(allowed)
    count = 0
    for url in extract_urls(text):
        host = host_of(url)
        if host is None or not is_allowed_host(host, allowed_domains):
            count += 1
    return count
