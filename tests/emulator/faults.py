"""Injected faults: answer some calls TooManyRequestsException or HTTP 500, drop the connection
before or after doing the work, or delay the answer.

Why this module exists: a migration tool must be exactly-once under retries. The interesting case
is ``drop_after``: the user WAS created but the client never heard the answer, so its retry meets
``UsernameExistsException``. moto cannot produce that on its own.

Configuration (``POST /_emulator/config {"faults": {...}}``, or ``--config``)::

    {"seed": 7,                         # seeds the random draws (null: unseeded)
     "rules": {"*": {...},               # every Cognito operation without a rule of its own
               "AdminCreateUser": {...}, # one operation (Cognito, Logs, "ImportUpload", "S3.PUT")
              }}

A rule has fractions ``throttle``, ``internal_error``, ``drop_before``, ``drop_after`` (their sum at
most 1; one draw per call picks at most one of them), ``delay_ms`` with ``delay_fraction`` (default
1.0, an independent draw), and optional ``after_calls`` (leave the first N matching calls alone)
and ``max_faults`` (stop after injecting N faults; delays do not count). A rule for ``S3.GET`` may
also have ``truncate_body`` (fraction of object downloads whose answer announces the whole body
but stops after ``truncate_after_bytes`` bytes, default 65536, and then closes the connection: a
body stream that breaks mid-way). Setting ``faults``
replaces all rules; ``{"rules": {}}`` removes them. The most specific rule applies, never both.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

KINDS = ("throttle", "internal_error", "drop_before", "drop_after", "truncate_body")
_RULE_KEYS = set(KINDS) | {"delay_ms", "delay_fraction", "after_calls", "max_faults",
                           "truncate_after_bytes"}


@dataclass
class Decision:
    kind: str | None = None  # one of KINDS, or None
    delay_ms: float = 0.0
    truncate_after_bytes: int = 65536


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.seed = None
            self.rules: dict[str, dict] = {}
            self._rng = random.Random()
            self._calls: dict[str, int] = {}
            self._injected: dict[str, int] = {}

    def validate(self, update) -> dict:
        if not isinstance(update, dict):
            raise ValueError("faults must be a JSON object")
        unknown = set(update) - {"seed", "rules"}
        if unknown:
            raise ValueError(f"unknown faults key(s): {', '.join(sorted(unknown))}")
        seed = update.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("faults.seed must be an integer or null")
        rules = update.get("rules", {})
        if not isinstance(rules, dict):
            raise ValueError("faults.rules must be an object {operation or '*': rule}")
        normalised = {}
        for operation, rule in rules.items():
            if not isinstance(rule, dict):
                raise ValueError(f"faults.rules.{operation} must be an object")
            bad = set(rule) - _RULE_KEYS
            if bad:
                raise ValueError(f"unknown key(s) in faults.rules.{operation}: {', '.join(sorted(bad))}")
            clean = {}
            for key in KINDS + ("delay_fraction",):
                if key in rule:
                    clean[key] = _fraction(rule[key], f"faults.rules.{operation}.{key}")
            if operation != "S3.GET" and ("truncate_body" in rule or "truncate_after_bytes" in rule):
                raise ValueError(f"faults.rules.{operation}: truncate_body applies to S3.GET only")
            if sum(clean.get(kind, 0.0) for kind in KINDS) > 1.0 + 1e-9:
                raise ValueError(f"faults.rules.{operation}: the fault fractions add up to more than 1")
            for key in ("delay_ms", "after_calls", "max_faults", "truncate_after_bytes"):
                if key in rule:
                    value = rule[key]
                    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                        raise ValueError(f"faults.rules.{operation}.{key} must be a non-negative number")
                    clean[key] = value
            normalised[operation] = clean
        return {"seed": seed, "rules": normalised}

    def apply(self, update: dict) -> None:
        with self._lock:
            self.seed = update["seed"]
            self.rules = update["rules"]
            self._rng = random.Random(self.seed)
            self._calls = {}
            self._injected = {}

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "seed": self.seed,
                "rules": {op: dict(rule) for op, rule in self.rules.items()},
                "injected": dict(self._injected),
            }

    def decide(self, operation: str, is_cognito: bool) -> Decision:
        with self._lock:
            key = operation if operation in self.rules else ("*" if is_cognito else None)
            rule = self.rules.get(key) if key else None
            if not rule:
                return Decision()
            calls = self._calls.get(key, 0) + 1
            self._calls[key] = calls
            if calls <= rule.get("after_calls", 0):
                return Decision()
            decision = Decision(truncate_after_bytes=int(rule.get("truncate_after_bytes", 65536)))
            delay_ms = rule.get("delay_ms", 0)
            if delay_ms and self._rng.random() < rule.get("delay_fraction", 1.0):
                decision.delay_ms = float(delay_ms)
            if "max_faults" in rule and self._injected.get(key, 0) >= rule["max_faults"]:
                return decision
            draw = self._rng.random()
            threshold = 0.0
            for kind in KINDS:
                threshold += rule.get(kind, 0.0)
                if draw < threshold:
                    decision.kind = kind
                    self._injected[key] = self._injected.get(key, 0) + 1
                    break
            return decision


def _fraction(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number between 0 and 1")
    return float(value)


FAULTS = Faults()
