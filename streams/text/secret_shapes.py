"""Secret shapes for redaction, built from detect-secrets' maintained plugins where one fits.

Each :class:`SecretShape` is one compiled pattern; the redactor replaces ``group`` of every match (the
whole match, or only the value after a telling name) with ``<SECRET>``.

Taken from detect-secrets (``detect_secrets.plugins``, its ``denylist`` regexes, unchanged): AWS access
key ids and quoted AWS secret access keys named ``aws...key``, Azure storage keys, Discord bot tokens,
GitHub classic tokens (``ghp_``...), GitLab tokens, JWTs, Mailchimp keys, PyPI tokens, SendGrid keys,
Slack tokens and webhooks, Square OAuth secrets, Stripe ``sk_live_``/``rk_live_`` keys, Telegram bot tokens,
Twilio keys, and the headers of PEM/OpenSSH/PGP/PuTTY private keys. Field names that name a secret
(``password``, ``api_key``, ``secret``...) come from its keyword plugin's ``DENYLIST``.

Added here because detect-secrets 1.5 lacks or mis-sizes them:
- a match is extended to the end of its token (Stripe keys are longer than the plugin's 24 characters,
  and its JWT pattern stops before the signature), and a token must start at a token boundary: without
  that anchor a run like ``eyJeyJeyJ...`` costs quadratic time;
- PEM private keys: the plugin finds the ``BEGIN`` line; the whole block up to ``-----END...`` (or the end
  of the text, or PuTTY's ``Private-MAC:`` line) is redacted;
- fine-grained GitHub tokens (``github_pat_``);
- AWS secret access keys unquoted (``aws_secret_access_key = wJalr...``, as in credentials files and env);
- credentials in URLs (``scheme://user:password@host``): detect-secrets' BasicAuthDetector pattern is
  greedy across the path, so for ``https://u:pw@host:8080/a@b`` it marks ``8080/a`` and misses ``pw``;
  ours is bounded to RFC 3986 userinfo (no ``/?#`` in it).

Not used: ArtifactoryDetector (it matches ordinary words such as ``APEXlegends``), NpmDetector (a
whole-line pattern), OpenAIDetector (the redactor's own ``sk-`` rule covers those keys), the entropy
and IBM/Cloudant/SoftLayer keyword detectors (many false positives on ids and hashes).
Missed: a bare 40-character AWS secret access key with no ``aws...key`` name near it (it cannot be told
from other base64), and any secret shape not listed above.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.keyword import DENYLIST as SECRET_KEYWORDS
from detect_secrets.plugins.mailchimp import MailchimpDetector
from detect_secrets.plugins.private_key import PrivateKeyDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.square_oauth import SquareOAuthDetector
from detect_secrets.plugins.stripe import StripeDetector

__all__ = ["SECRET_FIELD_NAME", "SECRET_SHAPES", "SecretShape"]

# The characters of an API token; a token shape starts where none precedes it and extends over them.
_TOKEN_CHARS: Final = r"A-Za-z0-9_\-"
# A JWT adds '.' between its parts and base64's '+/=' in some encoders.
_JWT_CHARS: Final = r"A-Za-z0-9_\-.+/="
_BASE64_CHARS: Final = r"A-Za-z0-9+/="
_AWS_SECRET_CHARS: Final = r"A-Za-z0-9+/"
# Longest URL user name and password looked at (bounded so that a hostile text stays linear).
_MAX_USERINFO_CHARS: Final = 256


@dataclass(frozen=True, slots=True)
class SecretShape:
    """One secret pattern; ``group`` of each match is replaced (0: the whole match).

    ``markers`` (lower case) are a cheap pre-check: the pattern can only match a text whose lower-cased
    form contains one of them, so the regex runs only then (a regex costs ~50 µs per 2 KB here).
    """

    name: str
    pattern: re.Pattern[str]
    markers: tuple[str, ...]
    group: int = 0

    def may_match(self, lowered: str) -> bool:
        return any(marker in lowered for marker in self.markers)


def _inline(pattern: re.Pattern[str]) -> str:
    """The pattern's source with its IGNORECASE flag scoped to it, so it can be embedded."""
    return f"(?i:{pattern.pattern})" if pattern.flags & re.IGNORECASE else f"(?:{pattern.pattern})"


def _token(
    name: str,
    denylist: Iterable[re.Pattern[str]],
    markers: tuple[str, ...],
    chars: str = _TOKEN_CHARS,
) -> SecretShape:
    """A plugin's denylist patterns, anchored at a token start and extended to the token's end."""
    alternatives = "|".join(_inline(p) for p in denylist)
    return SecretShape(name, re.compile(f"(?<![{chars}])(?:{alternatives})[{chars}]*"), markers)


def _private_key_block() -> SecretShape:
    headers = "|".join(p.pattern for p in PrivateKeyDetector.denylist)
    end = r"-----END[^\n]*?-----|-----END[^\n]*|Private-MAC:[^\n]*|\Z"
    return SecretShape(
        "private_key",
        re.compile(f"(?:-----)?(?:{headers})(?s:.*?)(?:{end})"),
        ("private key", "putty-user-key-file"),
    )


def _aws_secret_access_keys() -> tuple[SecretShape, SecretShape]:
    quoted = AWSKeyDetector.denylist[1]  # aws...key = "<40 chars>": the value is group 1
    unquoted = re.compile(
        rf"aws.{{0,20}}?{AWSKeyDetector.secret_keyword}.{{0,20}}?[=:]\s*"
        rf"([{_AWS_SECRET_CHARS}]{{40}})(?![{_BASE64_CHARS}])",
        re.IGNORECASE,
    )
    return (
        SecretShape("aws_secret_access_key", quoted, ("aws",), group=1),
        SecretShape("aws_secret_access_key_unquoted", unquoted, ("aws",), group=1),
    )


# The literal starts of GitLabTokenDetector's patterns.
_GITLAB_PREFIXES: Final = (
    "glpat-",
    "gldt-",
    "glft-",
    "glsoat-",
    "glrt-",
    "glcbt-",
    "glimt-",
    "glptt-",
    "glagent-",
    "gloas-",
    "gr1348941",
)
_URL_CREDENTIALS: Final = SecretShape(
    "url_credentials",
    re.compile(rf"://([^\s/?#@:]{{1,{_MAX_USERINFO_CHARS}}}:[^\s/?#]{{1,{_MAX_USERINFO_CHARS}}})@"),
    ("://",),
    group=1,
)
_GITHUB_FINE_GRAINED: Final = SecretShape(
    "github_fine_grained",
    re.compile(rf"(?<![{_TOKEN_CHARS}])github_pat_[A-Za-z0-9_]{{22,}}"),
    ("github_pat_",),
)

SECRET_SHAPES: Final[tuple[SecretShape, ...]] = (
    # First: a key block holds base64 that other shapes would cut into pieces.
    _private_key_block(),
    _URL_CREDENTIALS,
    *_aws_secret_access_keys(),
    _token("jwt", JwtTokenDetector.denylist, ("eyj",), _JWT_CHARS),
    _token(
        "aws_access_key_id", AWSKeyDetector.denylist[:1], ("a3t", "abia", "acca", "akia", "asia")
    ),
    _token("stripe", StripeDetector.denylist, ("k_live_",)),
    _token("github", GitHubTokenDetector.denylist, ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")),
    _GITHUB_FINE_GRAINED,
    _token("gitlab", GitLabTokenDetector.denylist, _GITLAB_PREFIXES),
    _token("slack", SlackDetector.denylist, ("xox", "hooks.slack.com")),
    _token("sendgrid", SendGridDetector.denylist, ("sg.",)),
    _token("pypi", PypiTokenDetector.denylist, ("pypi-",)),
    _token("square", SquareOAuthDetector.denylist, ("sq0csp-",)),
    _token("azure_storage", AzureStorageKeyDetector.denylist, ("accountkey=",), _BASE64_CHARS),
    _token("mailchimp", MailchimpDetector.denylist, ("-us",)),
)

# A mapping key or JSON field whose name says its value is a secret: the whole value is redacted.
SECRET_FIELD_NAME: Final = re.compile("|".join(SECRET_KEYWORDS), re.IGNORECASE)
