"""The local stack: the AWS emulator, ``chalice local``, the event-source runners, provisioning.

Run from the repository root as modules: ``python -m localstack.stack up|down|status``.
"""
