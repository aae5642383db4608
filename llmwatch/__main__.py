"""``python -m llmwatch``: the same as the ``llmwatch`` command."""

from llmwatch.cli import main

main()
