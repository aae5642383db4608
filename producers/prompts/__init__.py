"""Prompts as versioned artifacts: the registry's records and state, and the SDK's prompt client.

- ``records``: prompt versions (content-addressed) and label moves, as the registry topic carries them.
- ``registry``: the state folded from those records, and the label moves it allows.
- ``split``, ``render``, ``context``, ``client``: what ``watch.prompts.get(...)`` is made of.
"""
