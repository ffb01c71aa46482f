"""The emulator's knobs: import-job timing, presigned-URL expiry, Cognito-rule switches, quotas and
faults, settable at start (command line / environment) and at run time (``POST /_emulator/config``).

Why this module exists: tests need to shrink Cognito's timings (a 15-minute URL, a job that expires
after a day) and to switch throttling and faults on and off between steps, without restarting the
server. One validated, lock-protected settings object keeps those knobs consistent for the request
threads and the import worker.
"""

from __future__ import annotations

import copy
import threading

import faults
import quotas

_DEFAULTS = {
    # Cognito's presigned upload URL is valid for 15 minutes.
    "presign_expiry_seconds": 900.0,
    # A Created job that is never started expires after 24-48 hours (AWS documentation).
    "job_expiry_seconds": 86400.0,
    # Import processing speed and how long a started job stays Pending.
    "import_rows_per_second": 20000.0,
    "import_pending_delay_seconds": 0.2,
    # Cognito's rule: a pool needs an auto-verified attribute and every row must set one verified.
    "require_auto_verified": True,
    # A job whose (failed + skipped) rows exceed this fraction of its rows ends Failed with
    # "Too many users have failed or been skipped during the import." (null: never).
    "too_many_failures_fraction": 0.5,
    # How CSV values are delimited: Cognito's documented format ("documented": no quotes, a comma
    # inside a value written \,) or standard CSV quoting ("rfc4180").
    "csv_quoting": "documented",
    # Cognito's per-file limits (500,000 users, 100 MB); tests lower them to provoke a job that
    # fails for an over-limit file.
    "max_file_users": 500_000,
    "max_file_bytes": 100 * 1024 * 1024,
    # Injected row failures: {"<cognito:username>": "<reason>"} makes an import job log that row
    # "[FAILED] Line Number N - <reason>" however valid it is (tests of per-user results).
    "import_row_failures": {},
    # The only password_hash notation accepted per algorithm, e.g. {"PBKDF2_SHA256": "passlib"}
    # (names as in hashes.NOTATIONS); an algorithm not named accepts every notation hashes.py
    # knows. Lets the preflight hash canary's fallback be tested.
    "import_hash_notations": {},
}


class Settings:
    """Lock-protected knob values; quotas and faults keep their own state in their modules."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict(_DEFAULTS)

    def get(self, key: str):
        with self._lock:
            return self._values[key]

    def reset(self) -> None:
        with self._lock:
            self._values = dict(_DEFAULTS)
        quotas.QUOTAS.reset()
        faults.FAULTS.reset()

    def update(self, body: dict) -> None:
        """Applies a partial configuration (the JSON of ``POST /_emulator/config``).

        Raises ValueError with a readable message on unknown keys or bad values; nothing is applied
        then."""
        if not isinstance(body, dict):
            raise ValueError("the configuration must be a JSON object")
        unknown = set(body) - set(_DEFAULTS) - {"quotas", "faults"}
        if unknown:
            raise ValueError(f"unknown configuration key(s): {', '.join(sorted(unknown))}")
        values = {}
        for key in ("presign_expiry_seconds", "job_expiry_seconds", "import_rows_per_second"):
            if key in body:
                values[key] = _number(body[key], key, minimum=0.001)
        for key in ("max_file_users", "max_file_bytes"):
            if key in body:
                value = body[key]
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"{key} must be a positive integer")
                values[key] = value
        if "import_row_failures" in body:
            failures = body["import_row_failures"]
            if not isinstance(failures, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and v for k, v in failures.items()
            ):
                raise ValueError('import_row_failures must be an object {"username": "reason"}')
            values["import_row_failures"] = dict(failures)
        if "import_hash_notations" in body:
            values["import_hash_notations"] = _notations(body["import_hash_notations"])
        if "import_pending_delay_seconds" in body:
            values["import_pending_delay_seconds"] = _number(
                body["import_pending_delay_seconds"], "import_pending_delay_seconds", minimum=0.0
            )
        if "require_auto_verified" in body:
            if not isinstance(body["require_auto_verified"], bool):
                raise ValueError("require_auto_verified must be true or false")
            values["require_auto_verified"] = body["require_auto_verified"]
        if "csv_quoting" in body:
            if body["csv_quoting"] not in ("documented", "rfc4180"):
                raise ValueError('csv_quoting must be "documented" or "rfc4180"')
            values["csv_quoting"] = body["csv_quoting"]
        if "too_many_failures_fraction" in body:
            fraction = body["too_many_failures_fraction"]
            if fraction is not None:
                fraction = _number(fraction, "too_many_failures_fraction", minimum=0.0)
                if fraction > 1:
                    raise ValueError("too_many_failures_fraction must be between 0 and 1, or null")
            values["too_many_failures_fraction"] = fraction
        # Validate everything before applying anything.
        quota_update = quotas.QUOTAS.validate(body["quotas"]) if "quotas" in body else None
        fault_update = faults.FAULTS.validate(body["faults"]) if "faults" in body else None
        with self._lock:
            self._values.update(values)
        if quota_update is not None:
            quotas.QUOTAS.apply(quota_update)
        if fault_update is not None:
            faults.FAULTS.apply(fault_update)

    def snapshot(self) -> dict:
        with self._lock:
            values = copy.deepcopy(self._values)
        values["quotas"] = quotas.QUOTAS.snapshot()
        values["faults"] = faults.FAULTS.snapshot()
        return values


def _notations(value) -> dict:
    from hashes import NOTATIONS

    if not isinstance(value, dict):
        raise ValueError('import_hash_notations must be an object {"ALGORITHM": "notation"}')
    for algorithm, notation in value.items():
        if algorithm not in NOTATIONS:
            raise ValueError(f"import_hash_notations: unknown algorithm {algorithm!r}")
        if notation not in NOTATIONS[algorithm]:
            raise ValueError(
                f"import_hash_notations: {algorithm} takes one of "
                f"{', '.join(NOTATIONS[algorithm])}, not {notation!r}"
            )
    return dict(value)


def _number(value, key: str, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key} must be a number")
    if value < minimum:
        raise ValueError(f"{key} must be at least {minimum}")
    return float(value)


SETTINGS = Settings()
