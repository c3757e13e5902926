"""Reconcile: list data triggers' buckets so an object whose notification was lost still runs.

listing.py  the minio client: bucket versioning, entries one at a time
seen.py     the seen set and per-trigger listing state (the only writer of their tables)
loop.py     Reconciler: the schedule, the pass, metrics, backoff
"""

from trigger_service.reconcile.loop import PassResult, Reconciler

__all__ = ["PassResult", "Reconciler"]
