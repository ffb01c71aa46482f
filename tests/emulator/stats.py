"""Per-operation and per-quota-category call counters, read by ``GET /_emulator/stats``.

Why this module exists: benchmarks and retry tests need to know how many calls the tool made, how
many Cognito's quotas refused and which faults were injected, measured by the server rather than
by the client under test.
"""

from __future__ import annotations

import threading
import time

import faults
import quotas


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._since = time.time()
            self._operations: dict[str, dict] = {}
            self._categories: dict[str, dict] = {}

    def _op(self, operation: str) -> dict:
        entry = self._operations.get(operation)
        if entry is None:
            entry = self._operations[operation] = {
                "calls": 0,
                "served": 0,
                "throttled": 0,
                "faults": {kind: 0 for kind in faults.KINDS},
                "delayed": 0,
            }
        return entry

    def _category(self, operation: str, is_cognito: bool) -> dict | None:
        if not is_cognito:
            return None
        category = quotas.category_of(operation)
        entry = self._categories.get(category)
        if entry is None:
            entry = self._categories[category] = {"calls": 0, "served": 0, "throttled": 0}
        return entry

    def call(self, operation: str, is_cognito: bool) -> None:
        with self._lock:
            self._op(operation)["calls"] += 1
            category = self._category(operation, is_cognito)
            if category:
                category["calls"] += 1

    def throttled(self, operation: str, is_cognito: bool) -> None:
        with self._lock:
            self._op(operation)["throttled"] += 1
            category = self._category(operation, is_cognito)
            if category:
                category["throttled"] += 1

    def served(self, operation: str, is_cognito: bool) -> None:
        with self._lock:
            self._op(operation)["served"] += 1
            category = self._category(operation, is_cognito)
            if category:
                category["served"] += 1

    def fault(self, operation: str, kind: str) -> None:
        with self._lock:
            self._op(operation)["faults"][kind] += 1

    def delayed(self, operation: str) -> None:
        with self._lock:
            self._op(operation)["delayed"] += 1

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "since": self._since,
                "elapsed_seconds": time.time() - self._since,
                "quotas_enabled": quotas.QUOTAS.snapshot()["enabled"],
                "operations": {
                    op: {**entry, "faults": dict(entry["faults"])}
                    for op, entry in sorted(self._operations.items())
                },
                "categories": {
                    cat: dict(entry) for cat, entry in sorted(self._categories.items())
                },
            }


STATS = Stats()
