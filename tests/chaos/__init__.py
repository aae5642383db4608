"""The chaos run of the whole pipeline (issue 7, item 8): faults in sequence under steady traffic.

``run`` is the runner (``python -m tests.chaos.run``), ``test_chaos`` its short variant for ``make test``
and ``test_sdk_outage`` the SDK's recovery after a long broker outage; ``rig``, ``proxy``,
``folder_lock`` and ``faults`` build and break the pipeline; ``accounting`` and ``table`` count and print
the outcome. See docs/reliability.md.
"""
