"""Helpers that more than one test module uses, by topic.

Test modules and ``conftest.py`` files import from here; nothing here imports
a test module or a conftest (``tests/unit/test_test_layout.py`` checks).
"""
