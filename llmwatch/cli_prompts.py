"""The ``llmwatch prompts`` commands (the prompt registry) and ``llmwatch canary`` (the canary analysis).

- ``prompts push FILE.yaml``: add a version (content-addressed: pushing the same content again is a
  no-op that prints the existing version).
- ``prompts list`` / ``prompts show NAME``: prompts, versions (``#n`` and id) and labels with weights.
- ``prompts diff NAME V1 V2``: a unified diff of two versions' templates, model and parameters.
- ``prompts label NAME VERSION LABEL [--weight W]``: point a label at a version, or give the version
  W% of the label (a canary or an A/B arm; the label's other versions share the rest).
- ``prompts rollback NAME [--label L]``: the label's state before its last move.

A version is named by its id, a unique prefix of it (4+ characters), or its number (``3`` / ``#3``).
Every move records who (``--by``, ``LLMWATCH_PROMPT_USER``, else the login name), when and why
(``--reason``). Exit codes: 0 done, 1 the registry topic could not be read or written, 2 bad input
(the message names the value).
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import orjson
import typer
from rich.table import Table

from llmwatch.cli_common import BootstrapOpt, _logging, _settings, console, err_console
from llmwatch.settings import Settings

if TYPE_CHECKING:
    from producers.prompts.records import LabelMove, PromptVersionRecord, RegistryRecord
    from producers.prompts.registry import RegistryState

__all__ = ["EXIT_REGISTRY", "EXIT_USAGE", "register"]

EXIT_REGISTRY: Final = 1
EXIT_USAGE: Final = 2

prompts_app = typer.Typer(
    help="The prompt registry: versions, labels, A/B splits and rollbacks.", no_args_is_help=True
)

ByOpt = Annotated[
    str | None, typer.Option("--by", help="Who moves the label [LLMWATCH_PROMPT_USER].")
]
ReasonOpt = Annotated[str, typer.Option("--reason", "-m", help="Why (kept in the audit trail).")]
LabelOpt = Annotated[str, typer.Option("--label", "-l", help="The label.")]


def register(app: typer.Typer) -> None:
    app.add_typer(prompts_app, name="prompts")
    app.command()(canary)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _user(settings: Settings, by: str | None) -> str:
    from llmwatch.prompt_registry import current_user

    return by or settings.prompt_user or current_user()


def _state(settings: Settings) -> RegistryState:
    from llmwatch.prompt_registry import RegistryError, read_registry

    try:
        return read_registry(settings.bootstrap, settings.layout.prompts)
    except RegistryError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(EXIT_REGISTRY) from exc


def _append(settings: Settings, record: RegistryRecord) -> None:
    from llmwatch.prompt_registry import RegistryError, append

    try:
        append(settings.bootstrap, settings.layout.prompts, record)
    except RegistryError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(EXIT_REGISTRY) from exc


def _usage(exc: ValueError) -> typer.Exit:
    err_console.print(f"[red]{exc}[/red]")
    return typer.Exit(EXIT_USAGE)


def _arms_text(state: RegistryState, name: str, move: LabelMove) -> str:
    parts = []
    for arm in move.arms:
        tag = " canary" if arm.version == move.canary else ""
        parts.append(f"#{state.number(name, arm.version)} {arm.version} {arm.weight}%{tag}")
    return ", ".join(parts)


@prompts_app.command("push")
def push(
    file: Annotated[Path, typer.Argument(help="Prompt YAML: name, template, model, params.")],
    by: ByOpt = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Add a prompt version from a YAML file (a no-op if that content is already a version)."""
    from llmwatch.prompt_registry import load_prompt_file

    settings = _settings(bootstrap=bootstrap)
    _logging(settings)
    try:
        record = load_prompt_file(file, created_by=_user(settings, by), now_ms=_now_ms())
    except ValueError as exc:
        raise _usage(exc) from exc
    state = _state(settings)
    known = state.version(record.name, record.version)
    if known is not None:
        number = state.number(record.name, record.version)
        console.print(f"{record.name} #{number} {record.version}: unchanged (already pushed)")
        return
    _append(settings, record)
    state.apply(record)
    number = state.number(record.name, record.version)
    console.print(f"[green]pushed[/green] {record.name} #{number} {record.version}")


@prompts_app.command("list")
def list_prompts(bootstrap: BootstrapOpt = None) -> None:
    """Every prompt with its number of versions and its labels."""
    settings = _settings(bootstrap=bootstrap)
    _logging(settings)
    state = _state(settings)
    table = Table("prompt", "versions", "labels")
    for name in state.names():
        labels = state.labels_of(name)
        shown = "; ".join(f"{label}: {_arms_text(state, name, m)}" for label, m in labels.items())
        table.add_row(name, str(len(state.history(name))), shown or "-")
    console.print(table)


@prompts_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    version: Annotated[
        str | None, typer.Option("--version", "-v", help="Show this version's template.")
    ] = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """A prompt's versions, labels (with who moved them, when and why) and one template."""
    settings = _settings(bootstrap=bootstrap)
    _logging(settings)
    state = _state(settings)
    try:
        history = state.history(name)
        if not history:
            state.resolve(name, "1")  # raises naming the known prompts
        chosen = state.resolve(name, version) if version else history[-1]
    except ValueError as exc:
        raise _usage(exc) from exc
    versions = Table("#", "version", "model", "created", "by", "description", title=name)
    for index, record in enumerate(history, start=1):
        created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(record.created_at_ms / 1000))
        versions.add_row(
            str(index), record.version, record.model, created, record.created_by, record.description
        )
    console.print(versions)
    labels = Table("label", "revision", "versions", "moved", "by", "action", "reason")
    for label, move in state.labels_of(name).items():
        moved = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(move.moved_at_ms / 1000))
        labels.add_row(
            label, str(move.revision), _arms_text(state, name, move), moved, move.moved_by,
            move.action.value, move.reason,
        )  # fmt: skip
    console.print(labels)
    console.print(f"[bold]#{state.number(name, chosen.version)} {chosen.version}[/bold] template:")
    console.print(chosen.template, markup=False, highlight=False)


@prompts_app.command("diff")
def diff(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    v1: Annotated[str, typer.Argument(help="The old version.")],
    v2: Annotated[str, typer.Argument(help="The new version.")],
    bootstrap: BootstrapOpt = None,
) -> None:
    """A unified diff of two versions: template, model and parameters."""
    settings = _settings(bootstrap=bootstrap)
    _logging(settings)
    state = _state(settings)
    try:
        old, new = state.resolve(name, v1), state.resolve(name, v2)
    except ValueError as exc:
        raise _usage(exc) from exc

    def lines(record: PromptVersionRecord) -> list[str]:
        params = orjson.dumps(record.params, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
        return [
            f"model: {record.model}\n",
            *[f"params {line}\n" for line in params.decode().splitlines()],
            "template:\n",
            *[
                line if line.endswith("\n") else line + "\n"
                for line in record.template.splitlines()
            ],
        ]

    label_old = f"{name}#{state.number(name, old.version)} {old.version}"
    label_new = f"{name}#{state.number(name, new.version)} {new.version}"
    out = "".join(difflib.unified_diff(lines(old), lines(new), label_old, label_new))
    console.print(out or "identical", markup=False, highlight=False)


@prompts_app.command("label")
def label(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    version: Annotated[str, typer.Argument(help="Version: id, id prefix, or number.")],
    label_name: Annotated[str, typer.Argument(metavar="LABEL", help="e.g. production, canary.")],
    weight: Annotated[
        int,
        typer.Option(
            "--weight", "-w", help="Percent of the label's traffic for this version (1-100)."
        ),
    ] = 100,
    reason: ReasonOpt = "",
    by: ByOpt = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Point LABEL at VERSION, or with --weight give VERSION that share of LABEL (a canary)."""
    settings = _settings(bootstrap=bootstrap)

    def plan(state: RegistryState) -> LabelMove:
        return state.plan_label(
            name, version, label_name, weight=weight, moved_by=_user(settings, by),
            reason=reason, now_ms=_now_ms(),
        )  # fmt: skip

    _move(settings, name, label_name, plan, "moved")


@prompts_app.command("rollback")
def rollback(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    label_name: LabelOpt = "production",
    reason: ReasonOpt = "",
    by: ByOpt = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Return a label to its state before its last move."""
    settings = _settings(bootstrap=bootstrap)

    def plan(state: RegistryState) -> LabelMove:
        return state.plan_rollback(
            name, label_name, moved_by=_user(settings, by), reason=reason, now_ms=_now_ms()
        )

    _move(settings, name, label_name, plan, "rolled back")


def _move(
    settings: Settings,
    name: str,
    label_name: str,
    plan: Callable[[RegistryState], LabelMove],
    what: str,
) -> None:
    """Plan a label move against the registry's current state, append it and print the new state."""
    _logging(settings)
    state = _state(settings)
    try:
        move = plan(state)
    except ValueError as exc:
        raise _usage(exc) from exc
    _append(settings, move)
    console.print(
        f"[green]{name}@{label_name} {what}[/green], revision {move.revision}: "
        f"{_arms_text(state, name, move)}"
    )


def canary(
    bootstrap: BootstrapOpt = None,
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="Label policy YAML [LLMWATCH_CANARY_POLICY_FILE]."),
    ] = None,
) -> None:
    """Run the canary analysis: per-version verdicts, automatic rollback, alerts."""
    from llmwatch.processes import run_canary
    from streams.prompts.policy import PolicyError

    settings = _settings(bootstrap=bootstrap, canary_policy_file=policy)
    _logging(settings)
    try:
        raise typer.Exit(run_canary(settings))
    except PolicyError as exc:
        raise _usage(exc) from exc
