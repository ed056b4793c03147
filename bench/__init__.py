"""Benchmarks: smsqueue against its references, in one run on one machine.

``python -m bench`` (or ``./dev bench``) starts a Valkey server, the provider
sandbox at a fixed latency, smsqueue's workers and a peer (one Celery task
per SMS, a blocking httpx call), runs every scenario for both, and writes
``bench/results/latest.md`` plus the table between the README's bench markers.
"""
