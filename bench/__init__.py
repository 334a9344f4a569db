"""``make bench``: a seeded workload against fresh local stacks, priced and compared.

Run from the repository root as modules: ``python -m bench.run``.
"""
