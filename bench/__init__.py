"""Benchmarks of ci-gateway against a direct signed call and the official SDK (issue 8).

Run them all with ``.venv/bin/python -m bench.run``; ``bench/README.md`` explains the method and
keeps the latest table. Nothing here is imported by the gateway or the tests.
"""
