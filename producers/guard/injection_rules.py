"""The prompt-injection rule table: attack families, weighted signals and their patterns (data only).

Each rule is ``(signal name, category, weight, triggers, pattern)``: the weight is the chance, alone,
that a text showing the signal is an attack; the pattern runs only when one of its lower-case trigger
strings is in the text (speed). ``producers.guard.injection_patterns`` scans texts with it. Standard
library only: the SDK imports it.
"""

from __future__ import annotations

import re
from typing import Final

from producers.guard.injection_families import (
    CATEGORIES,
    IGNORECASE,
    INSTRUCTION_OVERRIDE,
    MAX_DECODED_BLOBS,
    MAX_SCAN_CHARS,
    OVERRIDE_VERB,
    PRIOR,
    PROMPT_EXTRACTION,
    ROLEPLAY_JAILBREAK,
    RULE_WORDS,
    Rule,
)
from producers.guard.injection_rules_agent import AGENT_RULES

__all__ = [
    "CATEGORIES",
    "DENSITY_MIN_DIRECTIVES",
    "DENSITY_WEIGHT",
    "IGNORECASE",
    "MAX_DECODED_BLOBS",
    "MAX_SCAN_CHARS",
    "META_DISCOUNT",
    "META_DISCUSSION",
    "OBFUSCATION_WEIGHTS",
    "RULES_TABLE",
    "SIGNAL_NAMES",
    "Rule",
]

# (signal name, category, weight, triggers, pattern): see injection_families.Rule.
DIRECT_RULES: Final[tuple[Rule, ...]] = (
    (
        "ignore_previous",
        INSTRUCTION_OVERRIDE,
        0.9,
        (
            "ignor",
            "disregard",
            "forget",
            "skip",
            "overr",
            "bypass",
            "abandon",
            "discard",
            "neglect",
            "throw",
        ),
        re.compile(
            rf"\b{OVERRIDE_VERB}\b[^.\n]{{0,40}}?\b{PRIOR}\b[^.\n]{{0,25}}?\b{RULE_WORDS}\b",
            IGNORECASE,
        ),
    ),
    (
        "new_instructions",
        INSTRUCTION_OVERRIDE,
        0.55,
        ("instruction", "directive", "system prompt", "orders"),
        re.compile(
            r"\b(?:new|updated|revised|real|actual|true|overriding)\s+(?:system\s+)?(?:instructions?"
            r"|directives?|system\s+prompt|orders)\s*(?::|are\b|follow\b)",
            IGNORECASE,
        ),
    ),
    (
        "from_now_on",
        INSTRUCTION_OVERRIDE,
        0.4,
        ("from now on",),
        re.compile(
            r"\bfrom\s+now\s+on\b[^.\n]{0,60}?\b(?:you\s+(?:will|must|are|shall)|respond|answer|only|ignore)",
            IGNORECASE,
        ),
    ),
    (
        "no_longer_bound",
        ROLEPLAY_JAILBREAK,
        0.7,
        ("no longer",),
        re.compile(
            r"\byou\s+(?:are|will\s+be)\s+no\s+longer\s+(?:bound|restricted|limited|an?\s+ai|an?\s+assistant"
            r"|required)|\bno\s+longer\s+(?:bound|restricted)\s+by\b",
            IGNORECASE,
        ),
    ),
    (
        "fake_system_tag",
        INSTRUCTION_OVERRIDE,
        0.5,
        ("<|", "[system", "[inst", "[/", "###", "system", "admin"),
        re.compile(
            r"<\|?\s*(?:im_start|im_end|system|endoftext)\s*\|?>|\[/?(?:SYSTEM|INST)\]|\#\#\#\s*(?:system|new\s+"
            r"instructions?)\b|^\s*(?:system|admin)\s*(?:override|message|prompt)?\s*:",
            IGNORECASE | re.MULTILINE,
        ),
    ),
    (
        "end_of_input",
        INSTRUCTION_OVERRIDE,
        0.35,
        ("end of", "a test"),
        re.compile(
            r"\b(?:end\s+of\s+(?:user\s+)?(?:input|document|context|prompt)|the\s+(?:above|previous)\s+(?:was|is)"
            r"\s+(?:just\s+)?a\s+test)\b",
            IGNORECASE,
        ),
    ),
    (
        "no_restrictions",
        ROLEPLAY_JAILBREAK,
        0.45,
        ("restriction", "filter", "limitation", "censor", "polic", "ethical", "moral", "safety"),
        re.compile(
            r"\b(?:without|no|free\s+(?:from|of)|ignoring)\s+(?:any\s+)?(?:restrictions|filters|filtering|"
            r"limitations|censorship|content\s+polic(?:y|ies)|ethical\s+(?:guidelines|constraints)|moral"
            r"\s+(?:guidelines|constraints)|safety\s+(?:guidelines|rules|filters))\b",
            IGNORECASE,
        ),
    ),
    (
        "dan_persona",
        ROLEPLAY_JAILBREAK,
        0.75,
        ("anything now", "dan", "stan", "dude", "aim", "jailbr"),
        re.compile(
            r"\bdo\s+anything\s+now\b|\b(?:DAN|STAN|DUDE|AIM)\b(?=[^\n]{0,80}\b(?:mode|persona|stands|you\s+are|"
            r"can|will|character|prompt)\b)|\bjailbr(?:oken|eaking)\s+(?:mode|version|ai|assistant|persona)\b",
            re.S,
        ),
    ),
    (
        "developer_mode",
        ROLEPLAY_JAILBREAK,
        0.7,
        (" mode",),
        re.compile(
            r"\b(?:enable|activate|enter|switch\s+(?:in)?to|simulate|you\s+are\s+(?:now\s+)?in|with)\s+(?:the\s+)?"
            r"(?:developer|dev|god|debug|admin|sudo|unrestricted|unfiltered|evil|chaos|opposite)\s+mode\b"
            r"(?![^.\n]{0,40}\b(?:chrome|firefox|browser|settings|android|iphone|windows|phone|device|vs\s*code))",
            IGNORECASE,
        ),
    ),
    (
        "unrestricted_persona",
        ROLEPLAY_JAILBREAK,
        0.7,
        (
            "unrestricted",
            "unfiltered",
            "uncensored",
            "amoral",
            "unethical",
            "jailbroken",
            "rogue",
            "evil",
            "lawless",
        ),
        re.compile(
            r"\b(?:you\s+are\s+(?:now\s+)?|act\s+as\s+|pretend\s+(?:to\s+be|you\s+are)\s+|roleplay\s+as\s+|"
            r"become\s+)(?:an?\s+)?(?:\w+\s+){0,2}(?:unrestricted|unfiltered|uncensored|amoral|unethical|"
            r"jailbroken|rogue|evil|lawless)\b",
            IGNORECASE,
        ),
    ),
    (
        "persona_without_rules",
        ROLEPLAY_JAILBREAK,
        0.6,
        ("no ", "n't ", "not ", "never ", "say anything"),
        re.compile(
            r"\b(?:pretend|act|behave|roleplay|role-play|play\s+the\s+role|imagine\s+you\s+are)\b[^.\n]{0,80}?"
            r"\b(?:(?:has|have|with)\s+no\s+(?:rules|limits|restrictions|filters|morals|ethics|guidelines)|"
            r"(?:doesn'?t|does\s+not|never)\s+(?:follow|care\s+about|obey|refuse)|can\s+say\s+anything|never\s+refuses?)",
            IGNORECASE,
        ),
    ),
    (
        "stay_in_character",
        ROLEPLAY_JAILBREAK,
        0.35,
        ("character",),
        re.compile(
            r"\b(?:stay|remain|keep)\s+in\s+character\b|\bbreak(?:ing)?\s+character\b", IGNORECASE
        ),
    ),
    (
        "dual_response",
        ROLEPLAY_JAILBREAK,
        0.5,
        ("responses", "answers", "replies"),
        re.compile(
            r"\b(?:two|2|both)\s+(?:different\s+)?(?:responses|answers|replies)\b[^\n]{0,120}?\b(?:normal|classic|"
            r"filtered|jailbroken|unfiltered|uncensored)\b",
            IGNORECASE,
        ),
    ),
    (
        "system_prompt_request",
        PROMPT_EXTRACTION,
        0.8,
        ("prompt", "instructions", "system message"),
        re.compile(
            r"\b(?:reveal|show|print|output|display|repeat|tell\s+me|give\s+me|what\s+(?:is|are|was|were)|share|"
            r"leak|dump|recite|write\s+(?:out|down)|copy|paste|list|spell\s+out|translate)\b[^.\n?]{0,40}?\b(?:your|"
            r"the|its)\s+(?:(?:full|entire|exact|complete|original|hidden|secret|initial|first|developer|"
            r"confidential)\s+)*(?:system\s+(?:prompt|message|instructions)|(?:initial|original|hidden|secret|"
            r"developer|confidential)\s+(?:prompt|instructions)|pre-?prompt|instructions\s+(?:you\s+were|that\s+"
            r"you\s+were)\s+given)",
            IGNORECASE,
        ),
    ),
    (
        "repeat_above",
        PROMPT_EXTRACTION,
        0.7,
        ("above", "before", "preceding", "told", "you are"),
        re.compile(
            r"\b(?:repeat|print|output|copy|echo|recite)\s+(?:back\s+)?(?:everything|all(?:\s+the)?\s+text|all|the"
            r"\s+(?:text|words|lines))\s+(?:above|before\s+(?:this|my)|preceding)|\bwhat\s+were\s+you\s+told\s+"
            r"(?:before|initially|at\s+the\s+start)|\bstarting\s+(?:with|from)\s+[\"']?you\s+are\b",
            IGNORECASE,
        ),
    ),
    (
        "verbatim_instructions",
        PROMPT_EXTRACTION,
        0.45,
        ("verbatim", "word for word", "in full"),
        re.compile(
            r"\b(?:verbatim|word\s+for\s+word|in\s+full)\b[^\n]{0,60}?\b(?:instructions|prompt|rules|above|"
            r"guidelines)\b",
            IGNORECASE,
        ),
    ),
)
RULES_TABLE: Final[tuple[Rule, ...]] = DIRECT_RULES + AGENT_RULES
OBFUSCATION_WEIGHTS: Final = {
    "zero_width": 0.2,
    "homoglyph": 0.25,
    "base64": 0.1,
    "hex": 0.1,
    "rot13": 0.15,
    "leetspeak": 0.1,
}
DENSITY_WEIGHT: Final = 0.2
# Text that talks about attacks (security articles, detectors, red-team reports) quotes their phrases:
# its score is scaled down by this factor (the learned model still sees the text).
META_DISCUSSION = re.compile(
    r"\b(?:prompt\s+injection|jailbreak(?:s|ing)?\b|red\s+team|phrases?\s+like|payloads?|regex|detects?|"
    r"attackers?|security\s+(?:training|bulletin|newsletter|article))",
    IGNORECASE,
)
META_DISCOUNT: Final = 0.6
DENSITY_MIN_DIRECTIVES: Final = 4
SIGNAL_NAMES: Final = (
    tuple(r[0] for r in RULES_TABLE)
    + tuple(OBFUSCATION_WEIGHTS)
    + ("instruction_density", "meta_discussion")
)
