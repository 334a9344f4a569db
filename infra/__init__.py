"""The stage's CloudFormation: resources, policies, packaging and deployment.

Run from the repository root as modules: ``python -m infra.package --stage prod``.
"""
