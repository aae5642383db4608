"""The demo's quality part: a local fake judge, ``llmwatch judge``, and ``llmwatch eval run`` gating.

- The text analysis samples support-bot's answers for the judge (``llmwatch/data/sampling.demo.yaml``);
  ``llmwatch judge`` scores them on a fake judge model served on 127.0.0.1
  (``producers.simulator.fake_quality``), the only stand-in: it sits where the paid API would. Prompt
  v8's evasive answers score low, so the demo shows the relevance score dropping from v7 to v8.
- After the pipeline stops, ``llmwatch eval run`` answers the bundled golden set
  (``llmwatch/data/golden_support.jsonl``) with a fake support bot as ``support-bot-v7`` (the baseline)
  and ``support-bot-v8`` with ``--baseline``: the second run exits 1, a significant regression.

Waiting uses consumer-group lag, like the guardrails: the scores are complete when the judge's group
has committed the end of the judge-requests topic and the sink's group the end of the scores topic.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from llmwatch.demo_guardrails import consumer_lag
from llmwatch.processes import ChildProcess
from llmwatch.settings import Settings
from streams.storage import SCORES_TABLE

__all__ = [
    "DEMO_GOLDEN",
    "DEMO_JUDGE_MODEL",
    "DEMO_SAMPLING_FILE",
    "EvalGate",
    "QualityRow",
    "fake_judge",
    "read_quality",
    "run_eval_gate",
    "start_judge",
    "wait_for_scores",
]

DATA: Final = Path(__file__).resolve().parent / "data"
DEMO_SAMPLING_FILE: Final = DATA / "sampling.demo.yaml"
DEMO_GOLDEN: Final = DATA / "golden_support.jsonl"
DEMO_JUDGE_MODEL: Final = "mistral-small-latest"
# The fake judge stands in for Mistral's API: its calls are priced as Mistral's.
DEMO_JUDGE_PROVIDER: Final = "mistral_ai"
BASELINE_MODEL: Final = "support-bot-v7"
CANDIDATE_MODEL: Final = "support-bot-v8"
EVAL_SEEDS: Final = 3
EVAL_METRICS: Final = ("exact", "chrf")
_POLL_S: Final = 0.5
EVAL_TIMEOUT_S: Final = 600.0

# (service, prompt version, rubric, scores, mean score)
QualityRow = tuple[str, str, str, int, float]


@contextmanager
def fake_judge() -> Iterator[str]:
    """A fake judge model on 127.0.0.1; yields its OpenAI-compatible base URL."""
    from producers.simulator.fake_openai import FakeOpenAI
    from producers.simulator.fake_quality import judge_responder

    with FakeOpenAI() as server:
        server.set_responder("/v1/chat/completions", judge_responder(DEMO_JUDGE_MODEL))
        yield server.base_url


def start_judge(settings: Settings, judge_url: str) -> ChildProcess:
    return ChildProcess(
        "judge",
        ["judge"],
        {
            "LLMWATCH_BOOTSTRAP": settings.bootstrap,
            "LLMWATCH_DATA_DIR": str(settings.data_dir),
            "LLMWATCH_JUDGE_BASE_URL": judge_url,
            "LLMWATCH_JUDGE_MODEL": DEMO_JUDGE_MODEL,
            "LLMWATCH_JUDGE_PROVIDER": DEMO_JUDGE_PROVIDER,
            "LLMWATCH_JUDGE_CONCURRENCY": "8",
        },
        settings.log_dir / "judge.log",
    ).start()


def wait_for_scores(settings: Settings, timeout_s: float, tick: Callable[[int], None]) -> bool:
    """True once the judge and the sink have caught up with every judge request (False at timeout)."""
    layout = settings.layout
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        requests = consumer_lag(settings.bootstrap, settings.judge_group, layout.judge_requests)
        scores = consumer_lag(settings.bootstrap, settings.sink_group, layout.scores)
        if requests is not None and scores is not None:
            tick(requests + scores)
            if requests == 0 and scores == 0:
                return True
        time.sleep(_POLL_S)
    return False


def read_quality(client: Any, database: str, since_ms: int) -> list[QualityRow]:
    """Mean judge score per service, prompt version and rubric since ``since_ms``."""
    rows = client.query(
        "SELECT service, prompt_version, name, count() AS n, avg(score_value) AS mean "
        f"FROM {database}.{SCORES_TABLE} FINAL "
        "WHERE source = 'judge' AND scored_at >= fromUnixTimestamp64Milli({since:Int64}) "
        "GROUP BY service, prompt_version, name ORDER BY service, name, prompt_version",
        parameters={"since": since_ms},
    ).result_rows
    return [(str(s), str(v), str(r), int(n), float(m)) for s, v, r, n, m in rows]


@dataclass(slots=True)
class EvalGate:
    baseline_code: int = -1
    candidate_code: int = -1
    output: list[str] = field(default_factory=list)

    @property
    def gated(self) -> bool:
        """The baseline passed and the candidate was stopped as a significant regression."""
        return self.baseline_code == 0 and self.candidate_code == 1


def _references() -> dict[str, str]:
    from streams.evaluation.golden import load_dataset

    return {c.messages[-1]["content"]: c.reference or "" for c in load_dataset(DEMO_GOLDEN).cases}


def run_eval_gate(settings: Settings) -> EvalGate:
    """``llmwatch eval run`` for v7, then v8 against it, as subprocesses (the CLI as CI runs it)."""
    from producers.simulator.fake_openai import FakeOpenAI
    from producers.simulator.fake_quality import target_responder

    gate = EvalGate()
    env = {
        **os.environ,
        "LLMWATCH_DATA_DIR": str(settings.data_dir),
        "LLMWATCH_CLICKHOUSE_DSN": settings.dsn,
        "LLMWATCH_DATABASE": settings.database,
        "LLMWATCH_LOG_LEVEL": "WARNING",
        "COLUMNS": "120",
    }
    with FakeOpenAI() as target:
        target.set_responder("/v1/chat/completions", target_responder(_references()))
        for model, baseline in (
            (BASELINE_MODEL, None),
            (CANDIDATE_MODEL, f"demo-{BASELINE_MODEL}"),
        ):
            command = [
                sys.executable,
                "-m",
                "llmwatch",
                "eval",
                "run",
                "--dataset",
                str(DEMO_GOLDEN),
                "--target-url",
                target.base_url,
                "--model",
                model,
                "--seeds",
                str(EVAL_SEEDS),
                "--run-id",
                f"demo-{model}",
                "--junit",
                str(settings.data_dir / "eval" / f"{model}.xml"),
            ]
            for metric in EVAL_METRICS:
                command += ["--metric", metric]
            if baseline is not None:
                command += ["--baseline", baseline]
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=EVAL_TIMEOUT_S
            )
            gate.output.append(done.stdout + done.stderr)
            if baseline is None:
                gate.baseline_code = done.returncode
            else:
                gate.candidate_code = done.returncode
    return gate
