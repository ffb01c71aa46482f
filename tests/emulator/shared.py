"""Small pieces every emulator module needs: the lock that serialises access to moto's in-memory
backends, Cognito-style errors, and lookups of moto backends.

Why this module exists: moto's models are not thread-safe, while its server is threaded (werkzeug)
and the emulator adds a background import worker. Every Cognito / CloudWatch Logs request, the
import worker's batches and the control API's reads take :data:`BACKEND_LOCK`, so one consistent
rule protects all of moto's state.
"""

from __future__ import annotations

import json
import threading
import uuid

from moto.core.exceptions import JsonRESTError

# Re-entrant: a patched moto method may call another one that also locks.
BACKEND_LOCK = threading.RLock()

COGNITO_TARGET_PREFIX = "AWSCognitoIdentityProviderService"


class CognitoError(JsonRESTError):
    """A Cognito error answered the way moto answers its own: HTTP 400 (unless told otherwise)
    with ``{"__type": ..., "message": ...}``, which SDKs map to typed exceptions."""

    def __init__(self, error_type: str, message: str, status: int = 400):
        super().__init__(error_type, message)
        self.code = status


def invalid_parameter(message: str) -> CognitoError:
    return CognitoError("InvalidParameterException", message)


def json_error_body(error_type: str, message: str) -> bytes:
    return json.dumps({"__type": error_type, "message": message}).encode()


def aws_json_headers(body: bytes, error_type: str | None = None) -> list[tuple[str, str]]:
    headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("Content-Length", str(len(body))),
        ("x-amzn-RequestId", str(uuid.uuid4())),
    ]
    if error_type:
        headers.append(("x-amzn-ErrorType", error_type))
    return headers


def list_users_limit(response) -> int:
    """ListUsers' ``Limit`` of a request (a moto response object), checked as Cognito checks it:
    0 to 60, absent or 0 meaning 60."""
    from moto.cognitoidp.exceptions import InvalidParameterException

    limit = response._get_param("Limit")
    if limit is None:
        limit = 60
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= 60:
        raise InvalidParameterException(
            f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy "
            "constraint: Member must have value less than or equal to 60"
        )
    return limit or 60


def cognito_backends():
    from moto.cognitoidp.models import cognitoidp_backends

    return cognitoidp_backends


def find_user_pool(pool_id: str):
    """The moto user pool with this id in any account/region, or None. Caller holds BACKEND_LOCK."""
    region = pool_id.split("_", 1)[0] if "_" in pool_id else None
    for account_id, by_region in list(cognito_backends().items()):
        regions = [region] if region and region in by_region else list(by_region.keys())
        for region_name in regions:
            pool = by_region[region_name].user_pools.get(pool_id)
            if pool is not None:
                return pool
    return None


def logs_backend(account_id: str, region: str):
    from moto.logs.models import logs_backends

    return logs_backends[account_id][region]
