"""Per-operation and per-quota-category call counters, read by ``GET /_emulator/stats``.

Why this module exists: benchmarks and retry tests need to know how many calls the tool made, how
many Cognito's quotas refused and which faults were injected, measured by the server rather than
by the client under test. Per quota category it also keeps the most calls that arrived, and the
most that were served, within any one second (a sliding window over arrival times): a client's
pacing measured by the server, e.g. that a writer never sent more than its quota allows.
"""

from __future__ import annotations

import collections
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
            self._windows: dict[tuple[str, str], collections.deque] = {}

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
            entry = self._categories[category] = {
                "calls": 0, "served": 0, "throttled": 0,
                "max_calls_per_second": 0, "max_served_per_second": 0,
            }
        return entry

    def _peak(self, operation: str, entry: dict, kind: str) -> None:
        """Updates ``max_<kind>_per_second``: the most events in any window (t - 1 s, t]."""
        window = self._windows.setdefault((quotas.category_of(operation), kind),
                                          collections.deque())
        now = time.monotonic()
        while window and window[0] <= now - 1.0:
            window.popleft()
        window.append(now)
        key = f"max_{kind}_per_second"
        entry[key] = max(entry[key], len(window))

    def call(self, operation: str, is_cognito: bool) -> None:
        with self._lock:
            self._op(operation)["calls"] += 1
            category = self._category(operation, is_cognito)
            if category:
                category["calls"] += 1
                self._peak(operation, category, "calls")

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
                self._peak(operation, category, "served")

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
