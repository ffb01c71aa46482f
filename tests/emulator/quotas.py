"""Cognito's API request-rate quotas: one token bucket per quota category, shared by all user pools
(Cognito enforces them per account and Region; the emulator is one account).

Why this module exists: moto never throttles, so without this a migration tool could never be seen
handling ``TooManyRequestsException`` or pacing itself to Cognito's real numbers. Off by default;
on with ``--quotas`` or ``POST /_emulator/config {"quotas": {"enabled": true}}``.

Default rates are the documented defaults ("Quotas in Amazon Cognito", category operations):
UserAuthentication 120, UserCreation 50, UserAccountRecovery 30, UserRead 120, UserUpdate 25,
UserResourceRead 50, UserResourceUpdate 25, UserList 30, UserPoolRead 15, UserPoolUpdate 15,
UserPoolResourceRead 20, UserPoolResourceUpdate 15, UserPoolClientRead 15, UserPoolClientUpdate 15,
UserToken 120. Operations the table below does not name fall into ``Other`` (1000 RPS, generous).
Not modelled: the extra 5 RPS per-user-pool limit on some categories, per-user limits (10 reads
and 10 writes per second per user) and RespondToAuthChallenge's tripled allowance.

Two ways to enforce a rate, chosen per category (``mode`` for all, ``modes`` per category):

* ``token_bucket`` (the default): a bucket holds ``rate * burst_seconds`` tokens (default burst
  1 s) and refills at ``rate`` per second, so a caller that paused may send a burst.
* ``sliding_window``: at most ``floor(rate)`` (at least 1) admitted calls in ANY one-second window
  (t - 1 s, t], with no burst allowance: the strictest reading of "N requests per second", which a
  client pacing exactly at N with any jitter in its calls' arrival trips. Refused calls do not count.

A call over the quota is answered HTTP 400
``{"__type":"TooManyRequestsException","message":"Rate exceeded"}``.
"""

from __future__ import annotations

import collections
import threading
import time

MODES = ("token_bucket", "sliding_window")

DEFAULT_RATES = {
    "UserAuthentication": 120.0,
    "UserCreation": 50.0,
    "UserAccountRecovery": 30.0,
    "UserRead": 120.0,
    "UserUpdate": 25.0,
    "UserResourceRead": 50.0,
    "UserResourceUpdate": 25.0,
    "UserList": 30.0,
    "UserPoolRead": 15.0,
    "UserPoolUpdate": 15.0,
    "UserPoolResourceRead": 20.0,
    "UserPoolResourceUpdate": 15.0,
    "UserPoolClientRead": 15.0,
    "UserPoolClientUpdate": 15.0,
    "UserToken": 120.0,
    "Other": 1000.0,
}

_CATEGORY_OPERATIONS = {
    "UserAuthentication": [
        "AdminInitiateAuth", "InitiateAuth", "AdminRespondToAuthChallenge",
        "RespondToAuthChallenge",
    ],
    "UserCreation": ["AdminCreateUser", "SignUp", "ConfirmSignUp", "AdminConfirmSignUp"],
    "UserAccountRecovery": [
        "AdminResetUserPassword", "ForgotPassword", "ConfirmForgotPassword", "ChangePassword",
        "ResendConfirmationCode",
    ],
    "UserRead": ["AdminGetUser", "GetUser"],
    "UserUpdate": [
        "AdminUpdateUserAttributes", "AdminDeleteUserAttributes", "AdminDisableUser",
        "AdminEnableUser", "AdminDeleteUser", "AdminSetUserPassword", "AdminSetUserSettings",
        "AdminSetUserMFAPreference", "AdminLinkProviderForUser", "AdminDisableProviderForUser",
        "UpdateUserAttributes", "DeleteUserAttributes", "DeleteUser", "SetUserMFAPreference",
        "SetUserSettings", "VerifyUserAttribute", "GetUserAttributeVerificationCode",
    ],
    "UserResourceRead": [
        "AdminListGroupsForUser", "AdminListDevices", "AdminGetDevice", "ListDevices",
        "GetDevice", "AdminListUserAuthEvents",
    ],
    "UserResourceUpdate": [
        "AdminAddUserToGroup", "AdminRemoveUserFromGroup", "AdminForgetDevice",
        "AdminUpdateDeviceStatus", "ForgetDevice", "UpdateDeviceStatus", "ConfirmDevice",
        "AdminUpdateAuthEventFeedback", "UpdateAuthEventFeedback",
    ],
    "UserList": ["ListUsers", "ListUsersInGroup"],
    "UserPoolRead": ["DescribeUserPool", "ListUserPools", "GetUserPoolMfaConfig"],
    "UserPoolUpdate": [
        "CreateUserPool", "UpdateUserPool", "DeleteUserPool", "SetUserPoolMfaConfig",
        "AddCustomAttributes",
    ],
    "UserPoolResourceRead": [
        "GetCSVHeader", "DescribeUserImportJob", "ListUserImportJobs", "GetGroup", "ListGroups",
        "DescribeIdentityProvider", "ListIdentityProviders", "DescribeResourceServer",
        "ListResourceServers", "DescribeUserPoolDomain", "GetIdentityProviderByIdentifier",
    ],
    "UserPoolResourceUpdate": [
        "CreateUserImportJob", "StartUserImportJob", "StopUserImportJob", "CreateGroup",
        "UpdateGroup", "DeleteGroup", "CreateIdentityProvider", "UpdateIdentityProvider",
        "DeleteIdentityProvider", "CreateResourceServer", "UpdateResourceServer",
        "DeleteResourceServer", "CreateUserPoolDomain", "UpdateUserPoolDomain",
        "DeleteUserPoolDomain",
    ],
    "UserPoolClientRead": ["DescribeUserPoolClient", "ListUserPoolClients"],
    "UserPoolClientUpdate": [
        "CreateUserPoolClient", "UpdateUserPoolClient", "DeleteUserPoolClient",
    ],
    "UserToken": ["RevokeToken", "GlobalSignOut", "AdminUserGlobalSignOut"],
}

OPERATION_CATEGORY = {
    operation: category
    for category, operations in _CATEGORY_OPERATIONS.items()
    for operation in operations
}


def category_of(operation: str) -> str:
    return OPERATION_CATEGORY.get(operation, "Other")


class Quotas:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.enabled = False
            self.burst_seconds = 1.0
            self.rates = dict(DEFAULT_RATES)
            self.mode = "token_bucket"
            self.modes: dict[str, str] = {}
            self._buckets: dict[str, list[float]] = {}
            self._windows: dict[str, collections.deque] = {}

    def validate(self, update) -> dict:
        """Checks a ``"quotas"`` configuration object; returns it normalised."""
        if not isinstance(update, dict):
            raise ValueError("quotas must be a JSON object")
        unknown = set(update) - {"enabled", "burst_seconds", "rates", "mode", "modes"}
        if unknown:
            raise ValueError(f"unknown quotas key(s): {', '.join(sorted(unknown))}")
        normalised: dict = {}
        if "enabled" in update:
            if not isinstance(update["enabled"], bool):
                raise ValueError("quotas.enabled must be true or false")
            normalised["enabled"] = update["enabled"]
        if "burst_seconds" in update:
            burst = update["burst_seconds"]
            if isinstance(burst, bool) or not isinstance(burst, (int, float)) or burst <= 0:
                raise ValueError("quotas.burst_seconds must be a positive number")
            normalised["burst_seconds"] = float(burst)
        if "rates" in update:
            rates = update["rates"]
            if rates is None:
                normalised["rates"] = dict(DEFAULT_RATES)
            else:
                if not isinstance(rates, dict):
                    raise ValueError("quotas.rates must be an object {category: requests per second}")
                normalised["rates"] = {}
                for category, rate in rates.items():
                    if category not in DEFAULT_RATES:
                        raise ValueError(
                            f"unknown quota category {category}; known: {', '.join(DEFAULT_RATES)}"
                        )
                    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0:
                        raise ValueError(f"quotas.rates.{category} must be a positive number")
                    normalised["rates"][category] = float(rate)
        if "mode" in update:
            normalised["mode"] = _mode(update["mode"], "quotas.mode")
        if "modes" in update:
            modes = update["modes"]
            if modes is None:
                normalised["modes"] = None
            else:
                if not isinstance(modes, dict):
                    raise ValueError("quotas.modes must be an object {category: mode}, or null")
                for category, mode in modes.items():
                    if category not in DEFAULT_RATES:
                        raise ValueError(
                            f"unknown quota category {category}; known: {', '.join(DEFAULT_RATES)}"
                        )
                    _mode(mode, f"quotas.modes.{category}")
                normalised["modes"] = dict(modes)
        return normalised

    def apply(self, update: dict) -> None:
        with self._lock:
            if "enabled" in update:
                self.enabled = update["enabled"]
            if "burst_seconds" in update:
                self.burst_seconds = update["burst_seconds"]
            if "rates" in update:
                self.rates.update(update["rates"])
            if "mode" in update:
                self.mode = update["mode"]
            if "modes" in update:
                if update["modes"] is None:
                    self.modes = {}
                else:
                    self.modes.update(update["modes"])
            # Start every bucket full and every window empty under the new numbers.
            self._buckets = {}
            self._windows = {}

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "enabled": self.enabled,
                "burst_seconds": self.burst_seconds,
                "rates": dict(self.rates),
                "mode": self.mode,
                "modes": dict(self.modes),
                "operation_categories": dict(OPERATION_CATEGORY),
            }

    def mode_of(self, category: str) -> str:
        return self.modes.get(category, self.mode)

    def try_acquire(self, operation: str, now: float | None = None) -> bool:
        """Admits one call of the operation's category; False when the call is over quota.

        ``now`` (``time.monotonic()`` read under the lock, so admitted times are in order, by
        default) lets a test drive the clock."""
        category = category_of(operation)
        with self._lock:
            if now is None:
                now = time.monotonic()
            if not self.enabled:
                return True
            rate = self.rates[category]
            if self.mode_of(category) == "sliding_window":
                return self._window_admit(category, rate, now)
            capacity = max(1.0, rate * self.burst_seconds)
            bucket = self._buckets.get(category)
            if bucket is None:
                bucket = self._buckets[category] = [capacity, now]
            tokens = min(capacity, bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return True
            bucket[0] = tokens
            return False

    def _window_admit(self, category: str, rate: float, now: float) -> bool:
        """At most floor(rate) admitted calls in the window (now - 1 s, now]."""
        window = self._windows.setdefault(category, collections.deque())
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) < max(1, int(rate)):
            window.append(now)
            return True
        return False


def _mode(value, key: str) -> str:
    if value not in MODES:
        raise ValueError(f"{key} must be one of {', '.join(MODES)}")
    return value


QUOTAS = Quotas()
