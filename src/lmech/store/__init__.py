"""The run store: runs, configs, rows and verdicts in one SQLite file."""

from lmech.store.sqlite import RunStore, StoreError

__all__ = ["RunStore", "StoreError"]
