"""The prompt-injection rule table: attack families, weighted signals and their patterns (data only).

Each rule is ``(signal name, category, weight, triggers, pattern)``: the weight is the chance, alone,
that a text showing the signal is an attack; the pattern runs only when one of its lower-case trigger
strings is in the text (speed). ``producers.guard.injection_patterns`` scans texts with it. Standard
library only: the SDK imports it.
"""

from __future__ import annotations

import re
from typing import Final

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
Rule = tuple[str, str, float, tuple[str, ...], re.Pattern[str]]
RULES_TABLE: Final[tuple[Rule, ...]] = (
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
            rf"\b{_OVERRIDE_VERB}\b[^.\n]{{0,40}}?\b{_PRIOR}\b[^.\n]{{0,25}}?\b{_RULES}\b",
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
    (
        "note_to_ai",
        INDIRECT_INJECTION,
        0.7,
        ("ai", "assistant", "llm", "model", "chatbot", "agent", "gpt", "copilot", "bot"),
        re.compile(
            rf"\b(?:note|message|instructions?|attention|important)\s*(?:to|for)\s+(?:the\s+|any\s+)?{_AI}s?\b"
            rf"|\bif\s+you\s+are\s+an?\s+{_AI}\b|\b{_AI}s?\s+(?:reading|processing|summari[sz]ing|parsing|"
            rf"analy[sz]ing)\s+this\b|\bdear\s+{_AI}\b",
            IGNORECASE,
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
            IGNORECASE,
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
            IGNORECASE,
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
            IGNORECASE,
        ),
    ),
    (
        "markdown_image_exfil",
        EXFILTRATION,
        0.45,
        ("![",),
        re.compile(r"!\[[^\]]{0,80}\]\(\s*https?://[^)\s]{0,200}\?[^)\s]{0,200}=", IGNORECASE),
    ),
    (
        "url_placeholder",
        EXFILTRATION,
        0.7,
        ("http",),
        re.compile(
            r"https?://[^\s)\"']{0,200}(?:\{[^}\s]{1,40}\}|\$\{|%s\b|\[(?:DATA|SECRET|INFO|CONTEXT|SUMMARY|"
            r"CONVERSATION|PASSWORD|EMAIL|KEY|TOKEN)[^\]]{0,20}\]|<(?:data|secret|conversation|summary)>)",
            IGNORECASE,
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
            IGNORECASE,
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
            IGNORECASE,
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
            IGNORECASE,
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
            IGNORECASE,
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
            IGNORECASE,
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
            IGNORECASE,
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
            IGNORECASE,
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
            IGNORECASE,
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
            IGNORECASE,
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
            IGNORECASE,
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
            IGNORECASE | re.MULTILINE,
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
            IGNORECASE | re.MULTILINE,
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
