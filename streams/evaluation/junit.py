"""JUnit XML for an evaluation run, so CI systems (GitHub Actions, GitLab, Jenkins) show the gate.

One test suite per run; one test case per metric compared with the baseline, failed when the metric
regressed significantly (Holm-adjusted p below alpha), with the means, the CI and the p-values in the
message. A run without a baseline gets one passing case per metric with its mean. Written with the
standard library's ElementTree (escaping included); nothing here blocks beyond writing the file.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

from streams.evaluation.compare import MetricComparison

__all__ = ["junit_xml", "write_junit"]


def _describe(c: MetricComparison) -> str:
    return (
        f"{c.metric}: baseline {c.baseline_mean:.4f}, candidate {c.candidate_mean:.4f}, "
        f"difference {c.mean_difference:+.4f} (95% CI {c.ci_low:+.4f} to {c.ci_high:+.4f}), "
        f"p {c.p_value:.4g}, Holm-adjusted p {c.p_adjusted:.4g}, {c.cases} cases"
    )


def junit_xml(
    run_id: str,
    comparisons: Sequence[MetricComparison],
    means: Mapping[str, float],
    *,
    baseline_run_id: str | None,
    seconds: float,
) -> bytes:
    """The JUnit XML document of one run (see the module docstring)."""
    suite = ET.Element(
        "testsuite",
        name=f"llmwatch eval {run_id}",
        tests=str(len(comparisons) if comparisons else len(means)),
        failures=str(sum(c.regression for c in comparisons)),
        errors="0",
        time=f"{seconds:.3f}",
    )
    if comparisons:
        for c in comparisons:
            case = ET.SubElement(
                suite, "testcase", classname=f"llmwatch.eval.{run_id}", name=c.metric
            )
            text = _describe(c)
            if c.regression:
                failure = ET.SubElement(
                    case,
                    "failure",
                    message=f"significant regression against {baseline_run_id}",
                    type="regression",
                )
                failure.text = text
            else:
                ET.SubElement(case, "system-out").text = text
    else:
        for metric, mean in means.items():
            case = ET.SubElement(
                suite, "testcase", classname=f"llmwatch.eval.{run_id}", name=metric
            )
            ET.SubElement(case, "system-out").text = f"{metric}: mean {mean:.4f} (no baseline)"
    body: bytes = ET.tostring(_wrap(suite), encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body


def _wrap(suite: ET.Element) -> ET.Element:
    root = ET.Element("testsuites")
    root.append(suite)
    return root


def write_junit(path: Path, document: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(document)
