"""llmwatch front door: the CLI, settings and the embedded all-in-one runner."""

__version__ = "0.1.0"
__all__ = ["__version__"]
