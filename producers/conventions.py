"""OpenTelemetry GenAI attribute names and their llmwatch field names, defined once.

llmwatch's wire format uses short snake_case field names that mirror the OpenTelemetry GenAI semantic
conventions (``gen_ai.usage.input_tokens`` -> ``input_tokens``). When parsing a dict, the dotted OTel
names and the deprecated ones (``gen_ai.system``, ``prompt_tokens``, ``completion_tokens``) are accepted
as aliases; :data:`FIELD_ALIASES` is the single table of those aliases.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "FIELD_ALIASES",
    "GEN_AI_CONVERSATION_ID",
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_PROVIDER_NAME",
    "GEN_AI_REQUEST_MODEL",
    "GEN_AI_RESPONSE_MODEL",
    "GEN_AI_SYSTEM_DEPRECATED",
    "GEN_AI_USAGE_INPUT_TOKENS",
    "GEN_AI_USAGE_OUTPUT_TOKENS",
    "KNOWN_OPERATION_NAMES",
]

# Current OTel GenAI attribute names (semantic conventions, development status).
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_PROMPT_NAME: Final = "gen_ai.prompt.name"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
SERVER_ADDRESS: Final = "server.address"
ERROR_TYPE: Final = "error.type"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"

# Deprecated OTel names still emitted by older instrumentations.
GEN_AI_SYSTEM_DEPRECATED: Final = "gen_ai.system"
GEN_AI_USAGE_PROMPT_TOKENS_DEPRECATED: Final = "gen_ai.usage.prompt_tokens"
GEN_AI_USAGE_COMPLETION_TOKENS_DEPRECATED: Final = "gen_ai.usage.completion_tokens"

KNOWN_OPERATION_NAMES: Final = frozenset(
    {
        "chat",
        "generate_content",
        "text_completion",
        "embeddings",
        "retrieval",
        "create_agent",
        "invoke_agent",
        "execute_tool",
        "invoke_workflow",
    }
)

# llmwatch field name -> other names accepted for it when parsing a dict (OTel dotted, deprecated, common).
FIELD_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "operation_name": (GEN_AI_OPERATION_NAME,),
    "provider_name": (GEN_AI_PROVIDER_NAME, GEN_AI_SYSTEM_DEPRECATED, "system", "provider"),
    "request_model": (GEN_AI_REQUEST_MODEL, "model"),
    "response_model": (GEN_AI_RESPONSE_MODEL,),
    "response_id": (GEN_AI_RESPONSE_ID,),
    "max_tokens": (GEN_AI_REQUEST_MAX_TOKENS,),
    "temperature": (GEN_AI_REQUEST_TEMPERATURE,),
    "top_p": (GEN_AI_REQUEST_TOP_P,),
    "seed": (GEN_AI_REQUEST_SEED,),
    "stream": (GEN_AI_REQUEST_STREAM,),
    "finish_reasons": (GEN_AI_RESPONSE_FINISH_REASONS,),
    "input_tokens": (
        GEN_AI_USAGE_INPUT_TOKENS,
        GEN_AI_USAGE_PROMPT_TOKENS_DEPRECATED,
        "prompt_tokens",
    ),
    "output_tokens": (
        GEN_AI_USAGE_OUTPUT_TOKENS,
        GEN_AI_USAGE_COMPLETION_TOKENS_DEPRECATED,
        "completion_tokens",
    ),
    "cache_read_input_tokens": (GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,),
    "cache_creation_input_tokens": (GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,),
    "reasoning_output_tokens": (GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,),
    "session_id": (GEN_AI_CONVERSATION_ID,),
    "agent_name": (GEN_AI_AGENT_NAME,),
    "prompt_name": (GEN_AI_PROMPT_NAME,),
    "tool_name": (GEN_AI_TOOL_NAME,),
    "server_address": (SERVER_ADDRESS,),
    "error_type": (ERROR_TYPE,),
    "http_status": (HTTP_RESPONSE_STATUS_CODE,),
}
