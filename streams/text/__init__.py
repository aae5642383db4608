"""Text analysis: redaction of secrets and personal data, guardrail detectors.

Guarantees: no captured text, metadata value or dead-letter payload reaches storage unredacted
(``streams.text.redaction``). The detectors' heavy work (models, embeddings) runs in the text-analysis
consumer group, never on the metrics path.
"""

__all__: list[str] = []
