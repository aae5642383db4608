"""Prompt-injection attack families and the regex fragments the rule tables share (data only).

Standard library only: the SDK imports it (``producers.guard``).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "AI_NAMES",
    "CATEGORIES",
    "CODE_RELAY",
    "DOTALL_IGNORECASE",
    "EXFILTRATION",
    "IGNORECASE",
    "INDIRECT_INJECTION",
    "INSTRUCTION_OVERRIDE",
    "MAX_DECODED_BLOBS",
    "MAX_SCAN_CHARS",
    "OBFUSCATION",
    "OVERRIDE_VERB",
    "PRIOR",
    "PROMPT_EXTRACTION",
    "ROLEPLAY_JAILBREAK",
    "RULE_WORDS",
    "SECRET_STUFF",
    "Rule",
]

INSTRUCTION_OVERRIDE: Final = "instruction_override"
ROLEPLAY_JAILBREAK: Final = "roleplay_jailbreak"
PROMPT_EXTRACTION: Final = "prompt_extraction"
INDIRECT_INJECTION: Final = "indirect_injection"
EXFILTRATION: Final = "exfiltration"
CODE_RELAY: Final = "code_relay"
OBFUSCATION: Final = "obfuscation"  # signal family only; never reported as a category
CATEGORIES: Final = (
    INSTRUCTION_OVERRIDE,
    ROLEPLAY_JAILBREAK,
    PROMPT_EXTRACTION,
    INDIRECT_INJECTION,
    EXFILTRATION,
    CODE_RELAY,
)
# Longer texts are scanned on their first and last halves of this many characters.
MAX_SCAN_CHARS: Final = 20_000
MAX_DECODED_BLOBS: Final = 4
IGNORECASE: Final = re.IGNORECASE
DOTALL_IGNORECASE: Final = re.IGNORECASE | re.DOTALL

OVERRIDE_VERB = (
    r"(?:ignore|disregard|forget|skip|override|overrule|bypass|abandon|discard|neglect|throw\s+out)"
)
PRIOR = (
    r"(?:previous|prior|above|earlier|preceding|initial|original|system|existing|old|all|any|every)"
)
RULE_WORDS = (
    r"(?:instructions?|directives?|rules|prompts?|guidelines|commands|context|constraints|guardrails"
    r"|programming|policies|safety\s+(?:rules|guidelines|filters))"
)
AI_NAMES = r"(?:ai|a\.i\.|assistant|llm|language\s+model|chatbot|agent|model|gpt|copilot|bot)"
SECRET_STUFF = (
    r"(?:conversation|chat(?:\s+history)?|secrets?|passwords?|api[\s_-]*keys?|tokens?|credentials"
    r"|user'?s?\s+(?:data|email|details)|personal\s+data|previous\s+messages|system\s+prompt"
    r"|env(?:ironment)?\s+variables|session\s+cookies?|memory|history)"
)

# (signal name, category, weight, triggers, pattern). A weight is the chance alone that the text is an
# attack; a pattern runs only when one of its lower-case trigger strings is in the text (speed).
Rule = tuple[str, str, float, tuple[str, ...], re.Pattern[str]]
