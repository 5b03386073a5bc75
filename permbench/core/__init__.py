"""The types every plug-in needs, and nothing else: spec names, the plug-in base and its registry,
the matrix case and ordering values, native library loading, provenance and library versions.

``orderings/``, ``datasets/`` and ``harness/backends/`` import from here; nothing here imports
the plug-ins or the harness (``tests/test_layering.py`` checks the plug-in side).
"""
