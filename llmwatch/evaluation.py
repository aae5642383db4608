"""Wire settings into the evaluation path: the sampler of ``llmwatch analyze``, the judge service
(``llmwatch judge``), the rubric judge of ``llmwatch eval run`` and the agreement job.

Only this package reads settings; the domain modules (``streams.evaluation``) get plain values.
``run_judge`` blocks until SIGTERM/SIGINT and returns an exit code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from llmwatch.settings import Settings

if TYPE_CHECKING:
    from producers.sdk import Publisher
    from streams.evaluation.rubric import Rubric
    from streams.evaluation.sampling import Sampler
    from streams.evaluation.scoring import RubricJudge
    from streams.evaluation.tap import EvaluationTap
    from streams.text.analyzer import TextAnalyzer

__all__ = [
    "JUDGE_SERVICE",
    "SAMPLING_OFF",
    "build_rubric_judge",
    "build_sampler",
    "build_tap",
    "load_all_rubrics",
    "run_judge",
]

log = logging.getLogger(__name__)

JUDGE_SERVICE: Final = "llmwatch-judge"
SAMPLING_OFF: Final = "off"
# A judge call's size for the sampler's budget: the rubric template and the JSON verdict.
TEMPLATE_TOKENS: Final = 350
VERDICT_TOKENS: Final = 120
CHARS_PER_TOKEN: Final = 4

# (judge model, input tokens, output tokens) -> USD
PriceOf = Callable[[str, int, int], float]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def load_all_rubrics(settings: Settings) -> dict[str, Rubric]:
    """The bundled rubrics plus those of ``rubrics_dir`` (a name defined twice is an error)."""
    from streams.evaluation.rubric import load_rubrics
    from streams.evaluation.rubric_checks import RubricError

    rubrics = load_rubrics()
    if settings.rubrics_dir is not None:
        extra = load_rubrics(settings.rubrics_dir)
        clash = sorted(set(extra) & set(rubrics))
        if clash:
            raise RubricError(
                f"rubrics in {settings.rubrics_dir} redefine bundled rubrics {clash}; rename them"
            )
        rubrics |= extra
    return rubrics


def _judge_price(settings: Settings) -> PriceOf:
    from streams.analytics.cost import CostCalculator

    calculator = CostCalculator()

    def price(model: str, input_tokens: int, output_tokens: int) -> float:
        try:
            cost = calculator.price(
                settings.judge_provider, model, input_tokens, output_tokens
            ).cost_usd
        except ValueError:
            return 0.0
        return cost or 0.0

    return price


def build_sampler(settings: Settings) -> Sampler | None:
    """The sampler of the judge sampling rules, or None when sampling is off."""
    from streams.evaluation.metrics import METRIC_NAMES
    from streams.evaluation.sampling import Candidate, Sampler
    from streams.evaluation.sampling_rules import DEFAULT_SAMPLING_FILE, load_sampling

    path = settings.sampling_file
    if path is not None and str(path) == SAMPLING_OFF:
        return None
    rubrics = load_all_rubrics(settings)
    config = load_sampling(
        path or DEFAULT_SAMPLING_FILE, known_rubrics=set(rubrics), known_metrics=METRIC_NAMES
    )
    price = _judge_price(settings)
    model = settings.judge_model

    def cost_of(candidate: Candidate, chosen: tuple[str, ...]) -> float:
        judged = [r for r in chosen if r in rubrics]
        tokens_in = (TEMPLATE_TOKENS + candidate.text_chars // CHARS_PER_TOKEN) * len(judged)
        return price(model, tokens_in, VERDICT_TOKENS * len(judged))

    def applicable(rubric: str, candidate: Candidate) -> bool:
        found = rubrics.get(rubric)
        if found is None:
            return rubric in METRIC_NAMES and candidate.has_reference
        needs = set(found.requires)
        if "context" in needs and not candidate.has_context:
            return False
        return not ("reference" in needs and not candidate.has_reference)

    return Sampler(config, cost_of=cost_of, clock_ms=_now_ms, applicable=applicable)


def build_tap(settings: Settings, analyzer: TextAnalyzer) -> EvaluationTap:
    """The evaluation tap of ``llmwatch analyze``: judge sampling and feedback scores."""
    from streams.evaluation.tap import EvaluationTap

    return EvaluationTap(
        settings.layout, build_sampler(settings), redact=analyzer.redact, clock_ms=_now_ms
    )


def build_rubric_judge(settings: Settings, publisher: Publisher | None = None) -> RubricJudge:
    """The rubric judge on the configured endpoint; its calls are emitted through ``publisher``."""
    from streams.evaluation.judge_client import JudgeClient, JudgeEndpoint
    from streams.evaluation.scoring import RubricJudge

    key = settings.judge_api_key.get_secret_value() if settings.judge_api_key else ""
    endpoint = JudgeEndpoint(
        base_url=settings.judge_base_url,
        model=settings.judge_model,
        api_key=key,
        timeout_s=settings.judge_timeout_s,
        provider=settings.judge_provider,
    )
    return RubricJudge(
        JudgeClient(endpoint, publisher=publisher),
        load_all_rubrics(settings),
        judge_model=settings.judge_model,
        clock_ms=_now_ms,
        price=_judge_price(settings),
    )


def run_judge(settings: Settings) -> int:
    """Run the judge service until SIGTERM/SIGINT; its own calls are events of ``llmwatch-judge``."""
    from llmwatch.processes import stop_event_on_signals
    from producers.events import TextCapture
    from producers.sdk import Publisher
    from streams.admin import ensure_topics
    from streams.evaluation.judge_service import JudgeService, JudgeServiceConfig

    ensure_topics(settings.bootstrap, settings.layout.specs())
    stop = stop_event_on_signals()
    with Publisher(
        settings.bootstrap,
        settings.layout.events,
        service=JUDGE_SERVICE,
        environment="production",
        text_capture=TextCapture.OFF,
    ) as publisher:
        judge = build_rubric_judge(settings, publisher)
        config = JudgeServiceConfig(
            bootstrap=settings.bootstrap,
            layout=settings.layout,
            group_id=settings.judge_group,
            concurrency=settings.judge_concurrency,
            session_timeout_ms=int(settings.session_timeout_s * 1000),
            heartbeat_path=settings.heartbeat_path("judge"),
        )
        log.info(
            "llmwatch judge: %s on %s, rubrics %s",
            settings.judge_model,
            settings.judge_base_url,
            sorted(judge.rubrics),
        )
        JudgeService(config, judge.score).run(stop)
    return 0
