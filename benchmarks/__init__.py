"""The asv suite of permbench (see benchmarks.py and asv.conf.json at the top level)."""
