"""The judge's HTTP client: one chat completion from any OpenAI-compatible endpoint, with retries.

:class:`JudgeClient` calls ``chat.completions.create`` of a real ``openai.AsyncOpenAI`` client pointed
at the configured base URL (OpenAI, Anthropic's OpenAI-compatible API, vLLM, Ollama...), with the SDK's
own retries off (``max_retries=0``): the retries are done here, so each attempt is visible and counted.

Guarantees:
- Retries: a 429, a 408, any 5xx, a timeout or a connection error is retried, up to
  ``max_attempts`` attempts in all, after a delay of exponential backoff with full jitter
  (``rng.uniform(0, min(backoff_max_s, backoff_base_s * 2**attempt))``, attempt counted from 0), or
  the reply's ``Retry-After`` (seconds; ``retry-after-ms`` too) when it has one, capped at
  ``backoff_max_s``. Exhausted attempts raise :class:`JudgeCallError` with ``permanent=False``.
- Any other 4xx (bad request, auth, unknown model...) and a reply without a choice raise
  :class:`JudgeCallError` with ``permanent=True`` at once: asking again cannot help.
- Cost visibility: with a ``publisher`` the client is instrumented (``Publisher.instrument``), so
  EVERY attempt, failed ones included, is one LLM-call event of the publisher's service (the judge
  process uses ``llmwatch-judge``) and the judge's own spend shows on the cost dashboard.
- Errors never quote the request's messages (they carry the judged text); they name the endpoint,
  the model, the status and the server's error message.

What can block: :meth:`JudgeClient.complete` awaits at most ``max_attempts`` calls of ``timeout_s``
each plus the backoff delays in between (through the injected ``sleep``); nothing blocks the loop.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import openai
from openai.types.chat import ChatCompletion

if TYPE_CHECKING:
    from producers.sdk.publisher import Publisher

__all__ = [
    "RETRYABLE_STATUSES",
    "JudgeCallError",
    "JudgeClient",
    "JudgeEndpoint",
    "JudgeReply",
]

# 408 (request timeout) and 429 (rate limited) are worth another try; so is every 5xx.
RETRYABLE_STATUSES: Final = frozenset({408, 429})
_SERVER_ERROR: Final = 500
# Local servers (vLLM, Ollama) take no key, but the openai client insists on one.
NO_API_KEY: Final = "unused"
JSON_MODE: Final = {"type": "json_object"}

Sleep = Callable[[float], Awaitable[Any]]


@dataclass(frozen=True)
class JudgeEndpoint:
    """Where the judge is and how patiently to call it."""

    base_url: str
    model: str
    api_key: str = ""
    timeout_s: float = 30.0
    max_attempts: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 20.0
    # The OTel provider name its calls are recorded under (``mistral_ai``, ``anthropic``...), so the
    # pipeline prices them; None: from the URL's host (``openai`` for api.openai.com).
    provider: str | None = None

    def __post_init__(self) -> None:
        url = urlsplit(self.base_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError(f"judge base_url must be an http(s) URL, got {self.base_url!r}")
        if not self.model.strip():
            raise ValueError(f"judge model must be non-empty, got {self.model!r}")
        for name in ("timeout_s", "backoff_base_s", "backoff_max_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"judge {name} must be a positive number, got {value!r}")
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValueError(
                f"judge max_attempts must be an integer >= 1, got {self.max_attempts!r}"
            )

    def __repr__(self) -> str:  # the key stays out of logs and tracebacks
        key = "***" if self.api_key else ""
        return (
            f"JudgeEndpoint(base_url={self.base_url!r}, model={self.model!r}, api_key={key!r}, "
            f"timeout_s={self.timeout_s!r}, max_attempts={self.max_attempts!r})"
        )


@dataclass(frozen=True)
class JudgeReply:
    """The judge's answer: the first choice's text, the model that answered, usage, attempts made."""

    text: str
    model: str
    input_tokens: int
    output_tokens: int
    attempts: int


class JudgeCallError(Exception):
    """A judge call that failed: ``permanent`` when retrying cannot help (a 4xx other than 408/429,
    an empty reply), else the retries ran out. ``status`` is the last HTTP status (None for timeouts
    and connection errors)."""

    def __init__(self, message: str, *, permanent: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status


def retryable(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= _SERVER_ERROR


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """The server's requested wait in seconds (``retry-after-ms``, else ``retry-after`` in seconds);
    None when absent, negative or not a number (an HTTP date is not honored)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw) * scale
        except ValueError:
            continue
        if math.isfinite(value) and value >= 0:
            return value
    return None


class JudgeClient:
    """Chat completions from the judge endpoint, retried (see the module docstring)."""

    def __init__(
        self,
        endpoint: JudgeEndpoint,
        *,
        publisher: Publisher | None = None,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.endpoint = endpoint
        self._rng = rng if rng is not None else random.Random()
        self._sleep = sleep
        self._client = openai.AsyncOpenAI(
            base_url=endpoint.base_url,
            api_key=endpoint.api_key or NO_API_KEY,
            max_retries=0,
            timeout=endpoint.timeout_s,
        )
        if publisher is not None:
            if endpoint.provider:
                publisher.instrument(self._client, provider=endpoint.provider)
            else:
                publisher.instrument(self._client)
        self.counts: dict[str, int] = {"calls": 0, "attempts": 0, "retries": 0, "failures": 0}

    def backoff_s(self, attempt: int, retry_after: float | None = None) -> float:
        """The delay after failed attempt ``attempt`` (0-based): Retry-After if given, else full
        jitter; never more than ``backoff_max_s``."""
        cap = self.endpoint.backoff_max_s
        if retry_after is not None:
            return min(cap, retry_after)
        return self._rng.uniform(0.0, min(cap, self.endpoint.backoff_base_s * 2**attempt))

    async def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        temperature: float = 0.0,
        seed: int | None = None,
        json_mode: bool = True,
    ) -> JudgeReply:
        """The judge's reply to ``messages``; JudgeCallError when it cannot be had."""
        endpoint = self.endpoint
        kwargs: dict[str, Any] = {
            "model": endpoint.model,
            "messages": [dict(m) for m in messages],
            "temperature": temperature,
        }
        if seed is not None:
            kwargs["seed"] = seed
        if json_mode:
            kwargs["response_format"] = dict(JSON_MODE)
        self.counts["calls"] += 1
        problem = ""
        status: int | None = None
        for attempt in range(endpoint.max_attempts):
            self.counts["attempts"] += 1
            wait: float | None = None
            try:
                response = await self._client.chat.completions.create(**kwargs)
            except openai.APIStatusError as exc:
                status = exc.status_code
                problem = f"HTTP {status}: {exc.message}"
                if not retryable(status):
                    self.counts["failures"] += 1
                    raise JudgeCallError(
                        self._describe(problem), permanent=True, status=status
                    ) from exc
                wait = retry_after_s(exc.response.headers)
            except openai.APIConnectionError as exc:  # timeouts included (APITimeoutError)
                status = None
                problem = f"{type(exc).__name__}: {exc}"
            else:
                return self._reply(response, attempt + 1)
            if attempt + 1 < endpoint.max_attempts:
                self.counts["retries"] += 1
                await self._sleep(self.backoff_s(attempt, wait))
        self.counts["failures"] += 1
        raise JudgeCallError(
            self._describe(f"gave up after {endpoint.max_attempts} attempts; last: {problem}"),
            permanent=False,
            status=status,
        )

    def _reply(self, response: object, attempts: int) -> JudgeReply:
        if not isinstance(response, ChatCompletion) or not response.choices:
            self.counts["failures"] += 1
            raise JudgeCallError(
                self._describe(f"reply without a choice: got {type(response).__name__}"),
                permanent=True,
                status=None,
            )
        usage = response.usage
        return JudgeReply(
            text=response.choices[0].message.content or "",
            model=response.model or self.endpoint.model,
            input_tokens=usage.prompt_tokens if usage is not None else 0,
            output_tokens=usage.completion_tokens if usage is not None else 0,
            attempts=attempts,
        )

    def _describe(self, problem: str) -> str:
        return f"judge {self.endpoint.model!r} at {self.endpoint.base_url!r}: {problem}"

    async def aclose(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> JudgeClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
