"""The cheap prompt-injection layer: hand-written patterns, structure and de-obfuscation, pure ``re``.

:func:`injection_signals` scores one text in [0, 1] from named signals (``ignore_previous``,
``developer_mode``, ``system_prompt_request``, ``note_to_ai``, ``markdown_image_exfil``,
``destructive_shell``, ``base64`` ...) and names the strongest attack family (``category``). It never
returns the matched text, only signal names, so a verdict can be logged as it is.

Obfuscation: the text is NFKC-normalised, zero-width characters are dropped and Cyrillic/Greek
look-alike letters mapped to Latin before matching; base64 and hex blobs that decode to text, a ROT13
reading and a leetspeak reading are scanned again, and their hits count as much as plain ones (plus a
small weight for the obfuscation itself).

Guarantees: imports only the standard library (the SDK's ``watch.guard`` calls it in-process); never
raises on any ``str`` (non-str input gives an empty result); texts longer than ``MAX_SCAN_CHARS`` are
scanned on their head and tail only. Speed: p99 well under 2 ms for a 200-word prompt on one core
(``.venv/bin/python -m bench.bench_injection`` measures it). This layer is deliberately high precision
and modest recall; ``streams.text.injection.InjectionDetector`` adds a learned model on top.
Accuracy (of both layers, on a held-out dev split): ``bench/results/injection.json``.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from dataclasses import dataclass
from typing import Final

__all__ = [
    "CATEGORIES",
    "MAX_SCAN_CHARS",
    "SIGNAL_NAMES",
    "PatternSignals",
    "injection_signals",
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
_I: Final = re.IGNORECASE
_IS: Final = re.IGNORECASE | re.DOTALL

_OVERRIDE_VERB = (
    r"(?:ignore|disregard|forget|skip|override|overrule|bypass|abandon|discard|neglect|throw\s+out)"
)
_PRIOR = (
    r"(?:previous|prior|above|earlier|preceding|initial|original|system|existing|old|all|any|every)"
)
_RULES = (
    r"(?:instructions?|directives?|rules|prompts?|guidelines|commands|context|constraints|guardrails"
    r"|programming|policies|safety\s+(?:rules|guidelines|filters))"
)
_AI = r"(?:ai|a\.i\.|assistant|llm|language\s+model|chatbot|agent|model|gpt|copilot|bot)"
_SECRET_STUFF = (
    r"(?:conversation|chat(?:\s+history)?|secrets?|passwords?|api[\s_-]*keys?|tokens?|credentials"
    r"|user'?s?\s+(?:data|email|details)|personal\s+data|previous\s+messages|system\s+prompt"
    r"|env(?:ironment)?\s+variables|session\s+cookies?|memory|history)"
)

# (signal name, category, weight, triggers, pattern). A weight is the chance alone that the text is an
# attack; a pattern runs only when one of its lower-case trigger strings is in the text (speed).
_Rule = tuple[str, str, float, tuple[str, ...], re.Pattern[str]]
_RULES_TABLE: Final[tuple[_Rule, ...]] = (
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
            rf"\b{_OVERRIDE_VERB}\b[^.\n]{{0,40}}?\b{_PRIOR}\b[^.\n]{{0,25}}?\b{_RULES}\b", _I
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
            _I,
        ),
    ),
    (
        "from_now_on",
        INSTRUCTION_OVERRIDE,
        0.4,
        ("from now on",),
        re.compile(
            r"\bfrom\s+now\s+on\b[^.\n]{0,60}?\b(?:you\s+(?:will|must|are|shall)|respond|answer|only|ignore)",
            _I,
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
            _I,
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
            _I | re.MULTILINE,
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
            _I,
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
            _I,
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
            _I,
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
            _I,
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
            _I,
        ),
    ),
    (
        "stay_in_character",
        ROLEPLAY_JAILBREAK,
        0.35,
        ("character",),
        re.compile(r"\b(?:stay|remain|keep)\s+in\s+character\b|\bbreak(?:ing)?\s+character\b", _I),
    ),
    (
        "dual_response",
        ROLEPLAY_JAILBREAK,
        0.5,
        ("responses", "answers", "replies"),
        re.compile(
            r"\b(?:two|2|both)\s+(?:different\s+)?(?:responses|answers|replies)\b[^\n]{0,120}?\b(?:normal|classic|"
            r"filtered|jailbroken|unfiltered|uncensored)\b",
            _I,
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
            _I,
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
            _I,
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
            _I,
        ),
    ),
    (
        "note_to_ai",
        INDIRECT_INJECTION,
        0.7,
        ("ai", "assistant", "llm", "model", "chatbot", "agent", "gpt", "copilot", "bot"),
        re.compile(
            rf"\b(?:note|message|instructions?|attention|important)\s*(?:to|for)\s+(?:the\s+|any\s+)?{_AI}s?\b"
            rf"|\bif\s+you\s+are\s+an?\s+{_AI}\b|\b{_AI}s?\s+(?:reading|processing|summari[sz]ing|parsing|"
            rf"analy[sz]ing)\s+this\b|\bdear\s+{_AI}\b",
            _I,
        ),
    ),
    (
        "when_summarizing",
        INDIRECT_INJECTION,
        0.45,
        ("when ",),
        re.compile(
            r"\bwhen\s+(?:summari[sz]ing|you\s+summari[sz]e|asked\s+about|processing|answering\s+questions\s+"
            r"about)\s+(?:this|the\s+above)\b",
            _I,
        ),
    ),
    (
        "hide_from_user",
        INDIRECT_INJECTION,
        0.6,
        ("the user",),
        re.compile(
            r"\b(?:do\s+not|don'?t|never)\s+(?:tell|inform|mention\s+(?:this|it)\s+to|reveal\s+(?:this|it)\s+to|"
            r"show\s+(?:this|it)\s+to|let)\s+the\s+user\b|\bwithout\s+(?:telling|informing|notifying|alerting)\s+"
            r"the\s+user\b",
            _I,
        ),
    ),
    (
        "hidden_markup",
        INDIRECT_INJECTION,
        0.4,
        ("<!--", "display", "font-size", "color"),
        re.compile(
            r"<!--[^>]{0,300}?\b(?:ignore|instruction|assistant|ai|system|respond|must|you\s+are)\b|"
            r"(?:display\s*:\s*none|font-size\s*:\s*0|color\s*:\s*(?:white|#fff))[^>]{0,40}>[^<]{0,200}?\b"
            r"(?:ignore|instruction|assistant|must|you)\b",
            _IS,
        ),
    ),
    (
        "json_instruction_field",
        INDIRECT_INJECTION,
        0.35,
        ('":', "':", '" :', "' :"),
        re.compile(
            r"[\"'](?:instructions?|system|assistant_note|ai_note|note_for_ai|prompt|directive)[\"']\s*:",
            _I,
        ),
    ),
    (
        "markdown_image_exfil",
        EXFILTRATION,
        0.45,
        ("![",),
        re.compile(r"!\[[^\]]{0,80}\]\(\s*https?://[^)\s]{0,200}\?[^)\s]{0,200}=", _I),
    ),
    (
        "url_placeholder",
        EXFILTRATION,
        0.7,
        ("http",),
        re.compile(
            r"https?://[^\s)\"']{0,200}(?:\{[^}\s]{1,40}\}|\$\{|%s\b|\[(?:DATA|SECRET|INFO|CONTEXT|SUMMARY|"
            r"CONVERSATION|PASSWORD|EMAIL|KEY|TOKEN)[^\]]{0,20}\]|<(?:data|secret|conversation|summary)>)",
            _I,
        ),
    ),
    (
        "append_secret_to_url",
        EXFILTRATION,
        0.75,
        ("url", "link", "query", "image"),
        re.compile(
            rf"\b(?:append|add|include|encode|insert|put|embed|attach)\b[^.\n]{{0,60}}?\b{_SECRET_STUFF}\b"
            r"[^.\n]{0,60}?\b(?:url|link|query\s+(?:string|param(?:eter)?)|image\s+(?:link|url|src))",
            _I,
        ),
    ),
    (
        "send_secret_out",
        EXFILTRATION,
        0.75,
        ("http", "@", "url", "address", "endpoint", "server", "webhook"),
        re.compile(
            rf"\b(?:send|post|upload|forward|transmit|exfiltrate|leak|email|mail|submit)\b[^.\n]{{0,60}}?"
            rf"\b{_SECRET_STUFF}\b[^.\n]{{0,60}}?\b(?:to|at)\s+(?:https?://|[\w.+-]+@[\w-]+\.\w|(?:the\s+)?"
            r"(?:following|this|my|our)\s+(?:url|address|endpoint|server|webhook))",
            _I,
        ),
    ),
    (
        "run_this",
        CODE_RELAY,
        0.3,
        ("run", "exec", "eval", "invoke"),
        re.compile(
            r"\b(?:run|execute|exec|eval|invoke)\b[^.\n]{0,30}?\b(?:this|the\s+following|these|that)\s+(?:shell\s+|"
            r"bash\s+|terminal\s+|system\s+|sql\s+|python\s+|powershell\s+)?(?:command|commands|script|code|query|"
            r"sql|statement)\b",
            _I,
        ),
    ),
    (
        "use_your_tool",
        CODE_RELAY,
        0.35,
        ("your ", "agent"),
        re.compile(
            r"\b(?:use|using|with|call|invoke)\s+(?:your|the\s+agent'?s?)\s+(?:\w+\s+)?(?:tools?|shell|terminal|"
            r"database\s+(?:tool|access)|sql\s+tool|code\s+interpreter|python\s+tool|browser\s+tool|function"
            r"\s+calling)\b",
            _I,
        ),
    ),
    (
        "destructive_shell",
        CODE_RELAY,
        0.45,
        (
            "rm -",
            "curl",
            "wget",
            "/etc/",
            "nc -e",
            "mkfifo",
            "base64 -d",
            "os.system",
            "__import__",
            "chmod",
            ":|:",
        ),
        re.compile(
            r"\brm\s+-(?:rf|fr|r)\s+[/~*]|\b(?:curl|wget)\b[^|\n]{0,200}\|\s*(?:sudo\s+)?(?:ba|z)?sh\b|"
            r"/etc/(?:passwd|shadow)|\bnc\s+-e\b|\bmkfifo\b|base64\s+-d[^|\n]{0,40}\|\s*(?:ba)?sh|"
            r"\bos\.system\(|\b__import__\(|\bchmod\s+777\s+/|:\(\)\s*\{\s*:\|:&\s*\};:",
            _I,
        ),
    ),
    (
        "destructive_sql",
        CODE_RELAY,
        0.3,
        ("drop ", "truncate ", "delete from", "grant all", "alter user", "update "),
        re.compile(
            r"\b(?:DROP\s+(?:TABLE|DATABASE|SCHEMA)|TRUNCATE\s+TABLE|DELETE\s+FROM\s+\w+\s*(?:;|$|WHERE\s+1\s*=\s*1)|"
            r"GRANT\s+ALL|ALTER\s+USER|UPDATE\s+\w+\s+SET\s+\w*(?:role|admin|password|balance|is_admin))",
            _I,
        ),
    ),
    (
        "act_now",
        CODE_RELAY,
        0.2,
        ("immediately", "right now", "right away", "without "),
        re.compile(
            r"\b(?:immediately|right\s+now|right\s+away|without\s+(?:asking|confirmation|confirming|checking|"
            r"approval|review))\b",
            _I,
        ),
    ),
    (
        "decode_and_follow",
        OBFUSCATION,
        0.5,
        ("base64", "hex", "rot13", "rot-13", "binary", "cipher", "leet", "backwards"),
        re.compile(
            r"\b(?:decode|decipher|translate|convert|reverse)\b[^.\n]{0,40}?\b(?:base64|hex|rot13|rot-13|binary|"
            r"cipher|leetspeak|backwards)\b[^.\n]{0,80}?\b(?:follow|execute|do|obey|run|answer|comply|act\s+on)\b",
            _I,
        ),
    ),
    (
        "own_rules_request",
        PROMPT_EXTRACTION,
        0.6,
        ("your ",),
        re.compile(
            r"\b(?:repeat|recite|quote|print|show|paste|spell\s+out|translate|dump|write\s+out|output|summari[sz]e|"
            r"tell\s+me|what\s+(?:does|do|is|are))\b[^.\n?]{0,30}?\byour\s+(?:(?:hidden|secret|confidential|real|"
            r"initial|original|exact|full|first)\s+)*(?:instructions|rules|guidelines|preamble|configuration|"
            r"developer\s+message|context\s+window|persona\s+prompt)\b",
            _I,
        ),
    ),
    (
        "tool_call_relay",
        CODE_RELAY,
        0.4,
        ("tool", "function", "shell", "terminal"),
        re.compile(
            r"\b(?:call|invoke|use|using|open)\s+(?:the|a|your)\s+[\w-]+(?:\s+[\w-]+)?\s+(?:tool|function|shell|"
            r"terminal)\b[^.\n]{0,80}?(?:\b(?:delete|drop|truncate|grant|overwrite|rm|chmod|push\s+--force|"
            r"curl|wget|fetch|cookie|authorized_keys|passwd|execute|run)\b|`)",
            _I,
        ),
    ),
    (
        "address_the_agent",
        INDIRECT_INJECTION,
        0.45,
        ("assistant", "model", "agent", "chatbot", "llm", "ai"),
        re.compile(
            rf"(?:^|[.!?]\s+|\n|\])\s*(?:hey\s+|dear\s+|to\s+(?:any|the|all)\s+(?:automated\s+)?)?{_AI}s?\s*[:,]\s+"
            r"(?:the\s+user|you|do|don'?t|please|ignore|respond|reply|say|tell|quietly|mark|approve|issue|"
            r"forward|delete)",
            _I | re.MULTILINE,
        ),
    ),
    (
        "send_to_url",
        EXFILTRATION,
        0.45,
        ("http", "@"),
        re.compile(
            r"\b(?:send|post|upload|forward|transmit|email|e-mail|mail)\b[^.\n]{0,80}?\bto\s+(?:the\s+webhook\s+at\s+)?"
            r"(?:https?://\S+|[\w.+-]+@[\w-]+\.\w+)|https?://[^\s)\"']+[?&][\w-]+=(?=\s|$|\))",
            _I | re.MULTILINE,
        ),
    ),
    (
        "shouted_directive",
        INSTRUCTION_OVERRIDE,
        0.15,
        ("important", "urgent", "attention", "override", "priority"),
        re.compile(r"\b(?:IMPORTANT|URGENT|ATTENTION|OVERRIDE|PRIORITY)\b\s*[:!]"),
    ),
)
_OBFUSCATION_WEIGHTS: Final = {
    "zero_width": 0.2,
    "homoglyph": 0.25,
    "base64": 0.1,
    "hex": 0.1,
    "rot13": 0.15,
    "leetspeak": 0.1,
}
_DENSITY_WEIGHT: Final = 0.2
# Text that talks about attacks (security articles, detectors, red-team reports) quotes their phrases:
# its score is scaled down by this factor (the learned model still sees the text).
_META_DISCUSSION = re.compile(
    r"\b(?:prompt\s+injection|jailbreak(?:s|ing)?\b|red\s+team|phrases?\s+like|payloads?|regex|detects?|"
    r"attackers?|security\s+(?:training|bulletin|newsletter|article))",
    _I,
)
_META_DISCOUNT: Final = 0.6
_DENSITY_MIN_DIRECTIVES: Final = 4
SIGNAL_NAMES: Final = (
    tuple(r[0] for r in _RULES_TABLE)
    + tuple(_OBFUSCATION_WEIGHTS)
    + ("instruction_density", "meta_discussion")
)

_ZERO_WIDTH = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\u00ad]")
_LOOKALIKES: Final = str.maketrans(
    (
        "\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0456\u0458\u0455\u0501\u0261\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422"
        "\u0425\u0406\u0408\u0405\u03b1\u03bf\u03f2\u03bd\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a7\u03a5"
    ),
    "aeopcyxijsdgABEKMHOPCTXIJSaocvABEZHIKMNOPTXY",
)
_MIXED_SCRIPT_WORD = re.compile(r"(?=\w*[a-zA-Z])(?=\w*[\u0370-\u03ff\u0400-\u04ff])\w+")
_BASE64_BLOB = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{20,}={0,2}")
_HEX_BLOB = re.compile(r"\b(?:[0-9a-fA-F]{2}[\s:]?){12,}\b")
_LEET_HINT = re.compile(r"[a-z][0134578@$|][a-z]|\b[0134578@$][a-z]{2,}", _I)
_LEET_MAP: Final = str.maketrans("0134578@$|", "oieastbasi")
_DIRECTIVE = re.compile(
    r"\byou\s+(?:must|will|shall|should|are\s+to|have\s+to|need\s+to)\b|\b(?:always|never)\s+"
    r"(?:respond|answer|say|reply|output|mention)\b",
    _I,
)
_STRONG_RULES: Final = tuple(rule for rule in _RULES_TABLE if rule[2] >= 0.45)
_NON_LATIN_LETTER = re.compile("[\u0370-\u04ff]")


@dataclass(frozen=True, slots=True)
class PatternSignals:
    """What the pattern layer saw: a score in [0, 1], the strongest family, and the signal names."""

    score: float = 0.0
    category: str | None = None
    signals: tuple[str, ...] = ()


_EMPTY: Final = PatternSignals()


def _normalise(text: str) -> tuple[str, list[str]]:
    """NFKC, zero-width characters removed, look-alike letters mapped; with the obfuscations seen."""
    seen: list[str] = []
    cleaned = _ZERO_WIDTH.sub("", text)
    if len(cleaned) != len(text) and re.search(r"\w[\u200b-\u200d\u2060\ufeff]+\w", text):
        seen.append("zero_width")
    if not unicodedata.is_normalized("NFKC", cleaned):
        cleaned = unicodedata.normalize("NFKC", cleaned)
    if _NON_LATIN_LETTER.search(cleaned) and _MIXED_SCRIPT_WORD.search(cleaned):
        seen.append("homoglyph")
        cleaned = cleaned.translate(_LOOKALIKES)
    return cleaned, seen


def _match(text: str, rules: tuple[_Rule, ...] = _RULES_TABLE) -> list[tuple[str, str, float]]:
    """(name, category, weight) of each rule whose triggers and pattern are in ``text``."""
    gate = " ".join(text.lower().split())
    hits = []
    for name, category, weight, triggers, pattern in rules:
        if any(trigger in gate for trigger in triggers) and pattern.search(text):
            hits.append((name, category, weight))
    return hits


def _printable_share(decoded: str) -> float:
    if not decoded:
        return 0.0
    return sum(ch.isprintable() or ch in "\n\t" for ch in decoded) / len(decoded)


def _decode_blobs(text: str) -> list[tuple[str, str]]:
    """(obfuscation name, decoded text) for base64 and hex blobs that decode to readable text."""
    decoded: list[tuple[str, str]] = []
    for blob in _BASE64_BLOB.findall(text)[:MAX_DECODED_BLOBS]:
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=False)
            plain = raw.decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        if _printable_share(plain) > 0.95 and re.search(r"[a-zA-Z]{3,}\s+[a-zA-Z]{2,}", plain):
            decoded.append(("base64", plain))
    for blob in _HEX_BLOB.findall(text)[:MAX_DECODED_BLOBS]:
        try:
            plain = bytes.fromhex(re.sub(r"[\s:]", "", blob)).decode("utf-8")
        except ValueError:
            continue
        if _printable_share(plain) > 0.95 and " " in plain:
            decoded.append(("hex", plain))
    return decoded


def _alternate_readings(text: str) -> list[tuple[str, str]]:
    """Readings of an obfuscated text to scan again: decoded blobs, ROT13, leetspeak."""
    readings = _decode_blobs(text)
    readings.append(("rot13", codecs.decode(text, "rot13")))
    if _LEET_HINT.search(text):
        readings.append(("leetspeak", text.translate(_LEET_MAP)))
    return readings


def _combine(hits: dict[str, tuple[str, float]]) -> PatternSignals:
    if not hits:
        return _EMPTY
    keep = 1.0
    per_category: dict[str, float] = {}
    for family, weight in hits.values():
        keep *= 1.0 - weight
        if family != OBFUSCATION:
            per_category[family] = per_category.get(family, 0.0) + weight
    strongest = max(per_category, key=per_category.__getitem__) if per_category else None
    return PatternSignals(min(1.0, max(0.0, 1.0 - keep)), strongest, tuple(sorted(hits)))


def _scan(text: str) -> PatternSignals:
    cleaned, obfuscations = _normalise(text)
    hits: dict[str, tuple[str, float]] = {n: (c, w) for n, c, w in _match(cleaned)}
    for name in obfuscations:
        hits[name] = (OBFUSCATION, _OBFUSCATION_WEIGHTS[name])
    for how, reading in _alternate_readings(cleaned):
        found = _match(reading, _STRONG_RULES if how in ("rot13", "leetspeak") else _RULES_TABLE)
        new = [hit for hit in found if hit[0] not in hits]
        if new:
            hits[how] = (OBFUSCATION, _OBFUSCATION_WEIGHTS[how])
            hits.update({n: (c, w) for n, c, w in new})
    if len(_DIRECTIVE.findall(cleaned)) >= _DENSITY_MIN_DIRECTIVES:
        hits["instruction_density"] = (INSTRUCTION_OVERRIDE, _DENSITY_WEIGHT)
    result = _combine(hits)
    if result.signals and _META_DISCUSSION.search(cleaned):
        return PatternSignals(
            result.score * _META_DISCOUNT, result.category, (*result.signals, "meta_discussion")
        )
    return result


def injection_signals(text: str) -> PatternSignals:
    """The pattern layer's view of ``text``; never raises (a non-str or failing input scores 0)."""
    if not isinstance(text, str) or not text:
        return _EMPTY
    if len(text) > MAX_SCAN_CHARS:
        half = MAX_SCAN_CHARS // 2
        text = text[:half] + "\n" + text[-half:]
    try:
        return _scan(text)
    except Exception:  # the SDK's guard must never raise
        return _EMPTY
