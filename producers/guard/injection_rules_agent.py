"""Prompt-injection rules aimed at agents: indirect injection in documents and tool output, data
exfiltration, code and SQL relays, and the rest of the table (data only; see ``injection_rules``)."""

from __future__ import annotations

import re
from typing import Final

from producers.guard.injection_families import (
    AI_NAMES,
    CODE_RELAY,
    DOTALL_IGNORECASE,
    EXFILTRATION,
    IGNORECASE,
    INDIRECT_INJECTION,
    INSTRUCTION_OVERRIDE,
    OBFUSCATION,
    PROMPT_EXTRACTION,
    SECRET_STUFF,
    Rule,
)

__all__ = ["AGENT_RULES"]

AGENT_RULES: Final[tuple[Rule, ...]] = (
    (
        "note_to_ai",
        INDIRECT_INJECTION,
        0.7,
        ("ai", "assistant", "llm", "model", "chatbot", "agent", "gpt", "copilot", "bot"),
        re.compile(
            rf"\b(?:note|message|instructions?|attention|important)\s*(?:to|for)\s+(?:the\s+|any\s+)?{AI_NAMES}s?\b"
            rf"|\bif\s+you\s+are\s+an?\s+{AI_NAMES}\b|\b{AI_NAMES}s?\s+(?:reading|processing|summari[sz]ing|parsing|"
            rf"analy[sz]ing)\s+this\b|\bdear\s+{AI_NAMES}\b",
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
            DOTALL_IGNORECASE,
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
            rf"\b(?:append|add|include|encode|insert|put|embed|attach)\b[^.\n]{{0,60}}?\b{SECRET_STUFF}\b"
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
            rf"\b{SECRET_STUFF}\b[^.\n]{{0,60}}?\b(?:to|at)\s+(?:https?://|[\w.+-]+@[\w-]+\.\w|(?:the\s+)?"
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
            rf"(?:^|[.!?]\s+|\n|\])\s*(?:hey\s+|dear\s+|to\s+(?:any|the|all)\s+(?:automated\s+)?)?{AI_NAMES}s?\s*[:,]\s+"
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
