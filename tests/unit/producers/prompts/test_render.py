"""``{{ name }}`` rendering: whitespace tolerant, single pass, missing variables reported, never raised."""

from __future__ import annotations

import pytest

from producers.prompts.render import RenderResult, placeholders, render


@pytest.mark.parametrize(
    ("template", "variables", "expected"),
    [
        ("Hello {{name}}!", {"name": "Ada"}, "Hello Ada!"),
        ("Hello {{ name }}!", {"name": "Ada"}, "Hello Ada!"),
        ("Hello {{\tname \n}}!", {"name": "Ada"}, "Hello Ada!"),
        ("{{ a }}{{a}} {{ b }}", {"a": 1, "b": 2.5}, "11 2.5"),
        ("{{ user.name }} / {{ top-k }}", {"user.name": "x", "top-k": 3}, "x / 3"),
        ("{{ q }}", {"q": "{{ other }}"}, "{{ other }}"),  # a value is never rendered again
        ("{{ q }}", {"q": None}, "None"),
        ("no placeholders", {"unused": 1}, "no placeholders"),
        ("{ single } and {{ }} and {{ 1x }}", {}, "{ single } and {{ }} and {{ 1x }}"),
        ("{{{ name }}}", {"name": "Ada"}, "{Ada}"),
    ],
)
def test_fills_placeholders(template: str, variables: dict[str, object], expected: str) -> None:
    assert render(template, variables) == RenderResult(text=expected, missing=())


@pytest.mark.parametrize(
    ("template", "variables", "expected"),
    [
        (
            "Hi {{ name }}, re: {{ topic }}",
            {},
            RenderResult("Hi {{ name }}, re: {{ topic }}", ("name", "topic")),
        ),
        ("{{ b }} {{a}} {{ b }}", {"x": 1}, RenderResult("{{ b }} {{a}} {{ b }}", ("b", "a"))),
        ("{{ a }} {{ b }}", {"a": "A"}, RenderResult("A {{ b }}", ("b",))),
    ],
)
def test_missing_variables_are_left_and_reported(
    template: str, variables: dict[str, object], expected: RenderResult
) -> None:
    assert render(template, variables) == expected


def test_placeholders_lists_each_name_once() -> None:
    assert placeholders("{{ b }} {{a}} {{ b }} {{ 9 }}") == ("b", "a")
