"""The emulator's control API under ``/_emulator/`` (JSON), for tests and benchmarks.

Why this module exists: a test must reset state between cases, switch quotas and faults on and
off, read call counters, and look inside the emulator (a user's status and whether it carries an
imported hash, what file a job received, which lines it logged) without a Cognito API that exposes
any of that.

Endpoints (``docs``: tests/emulator/README.md):
``GET /_emulator/health``, ``GET|POST /_emulator/config``, ``POST /_emulator/reset``,
``GET /_emulator/stats``, ``POST /_emulator/stats/reset``,
``GET /_emulator/users/<pool id>/<username>``, ``POST /_emulator/users/<pool id>`` (seed users
straight into a pool: benchmarks need 50,000+ users in seconds, not 50,000 API calls),
``POST /_emulator/users/<pool id>/<username>`` (``{"created": <Unix seconds>}``: set the user's
``UserCreateDate`` and ``UserLastModifiedDate``, as if it had arrived then),
``GET /_emulator/import_jobs``,
``GET /_emulator/import_jobs/<job id>/csv``, ``GET /_emulator/import_jobs/<job id>/log``.
"""

from __future__ import annotations

import json
from urllib.parse import unquote

import import_jobs
from config import SETTINGS
from shared import BACKEND_LOCK, find_user_pool, logs_backend
from stats import STATS


def _json(status: int, payload) -> tuple[int, list, bytes]:
    body = json.dumps(payload, indent=1, default=str).encode()
    return status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))], body


def _read_body(environ) -> bytes:
    """The request body, read once. Every request's body is read, used or not: werkzeug's server
    drains unread request bytes after answering with a blocking read that waits for the client to
    close, so an unread body that arrives late stalls the connection until the client gives up."""
    if "emulator.body" not in environ:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["emulator.body"] = environ["wsgi.input"].read(length) if length else b""
    return environ["emulator.body"]


def _read_json(environ):
    raw = _read_body(environ)
    return json.loads(raw) if raw.strip() else {}


def _segments(environ) -> list[str]:
    """Path segments after ``/_emulator/``, percent-decoded one by one (a username may hold '/')."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
    path = raw.split("?", 1)[0]
    return [unquote(part) for part in path.split("/")[2:]]


def reset_everything() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    with BACKEND_LOCK:
        import_jobs.REGISTRY.reset()
        moto_api_backend.reset()  # what POST /moto-api/reset does
        SETTINGS.reset()
        STATS.reset()


def handle(environ) -> tuple[int, list, bytes]:
    method = environ.get("REQUEST_METHOD", "GET")
    _read_body(environ)
    parts = _segments(environ)
    route = parts[0] if parts else ""
    try:
        if route == "health" and method == "GET":
            return _json(200, {"status": "ok", "base_url": import_jobs.REGISTRY.base_url})
        if route == "config" and method == "GET":
            return _json(200, SETTINGS.snapshot())
        if route == "config" and method == "POST":
            SETTINGS.update(_read_json(environ))
            return _json(200, SETTINGS.snapshot())
        if route == "reset" and method == "POST":
            reset_everything()
            return _json(200, {"status": "ok"})
        if route == "stats" and method == "GET" and len(parts) == 1:
            return _json(200, STATS.snapshot())
        if route == "stats" and method == "POST" and parts[1:] == ["reset"]:
            STATS.reset()
            return _json(200, {"status": "ok"})
        if route == "users" and method == "GET" and len(parts) == 3:
            return _user(parts[1], parts[2])
        if route == "users" and method == "POST" and len(parts) == 2:
            return _seed_users(parts[1], _read_json(environ))
        if route == "users" and method == "POST" and len(parts) == 3:
            return _set_user_dates(parts[1], parts[2], _read_json(environ))
        if route == "import_jobs" and method == "GET":
            return _import_jobs(parts[1:])
    except ValueError as error:
        return _json(400, {"error": str(error)})
    return _json(404, {"error": f"no control endpoint {method} /_emulator/{'/'.join(parts)}"})


def _pool_user(pool_id: str, username: str):
    """(the moto user ``username`` of pool ``pool_id``, None), or (None, the 404 answer) when the
    pool or the user does not exist. Caller holds BACKEND_LOCK."""
    pool = find_user_pool(pool_id)
    if pool is None:
        return None, _json(404, {"error": f"User pool {pool_id} does not exist."})
    user = pool._get_user(username)
    if user is None:
        return None, _json(404, {"error": f"User {username} does not exist in {pool_id}."})
    return user, None


def _user(pool_id: str, username: str):
    with BACKEND_LOCK:
        user, missing = _pool_user(pool_id, username)
        if missing is not None:
            return missing
        imported = getattr(user, "emu_imported_hash", None)
        active_hash = imported is not None and user.password is None
        return _json(200, {
            "user_pool_id": pool_id,  # the key the pool was found by
            "username": user.username,
            "status": getattr(user.status, "value", user.status),
            "enabled": user.enabled,
            "attributes": dict(user.attribute_lookup),
            "mfa_enabled": bool(user.sms_mfa_enabled),
            "has_imported_hash": active_hash,
            "imported_hash_algorithm": imported.algorithm if active_hash else None,
            "import_job_id": getattr(user, "emu_import_job", None),
            "created": user.create_date.isoformat(),
        })


def _seed_users(pool_id: str, body) -> tuple[int, list, bytes]:
    """Adds users to a pool directly (no quotas, no counters, no API validation): ``{"users":
    [{"username": "u1", "attributes": {"email": "…"}, "enabled": true, "status": "CONFIRMED",
    "groups": ["staff"]}, …]}``. All or nothing: a username already in the pool (or twice in the
    body) or a group that does not exist → 400 and no user is added. Each user gets a random
    ``sub`` as in moto. Answers ``{"created": N}``."""
    from moto.cognitoidp.models import CognitoIdpUser, UserStatus

    users = body.get("users") if isinstance(body, dict) else None
    if not isinstance(users, list):
        raise ValueError('the body must be {"users": [...]}')
    with BACKEND_LOCK:
        pool = find_user_pool(pool_id)
        if pool is None:
            return _json(404, {"error": f"User pool {pool_id} does not exist."})
        names = set()
        for spec in users:
            name = spec.get("username") if isinstance(spec, dict) else None
            if not isinstance(name, str) or not name:
                raise ValueError("every user needs a non-empty username")
            if name in names or name in pool.users:
                raise ValueError(f"user {name} exists already")
            names.add(name)
            for group in spec.get("groups", []):
                if group not in pool.groups:
                    raise ValueError(f"group {group} does not exist")
            if spec.get("status", "CONFIRMED") not in UserStatus.__members__:
                raise ValueError(f"unknown status {spec.get('status')}")
        for spec in users:
            attributes = [{"Name": k, "Value": str(v)} for k, v in spec.get("attributes", {}).items()]
            user = CognitoIdpUser(pool.id, spec["username"], None,
                                  UserStatus[spec.get("status", "CONFIRMED")], attributes)
            user.enabled = bool(spec.get("enabled", True))
            pool.users[user.username] = user
            for group in spec.get("groups", []):
                pool.groups[group].users.add(user)
                user.groups.add(pool.groups[group])
    return _json(200, {"created": len(users)})


def _set_user_dates(pool_id: str, username: str, body: dict):
    """Backdate a user: tests of ``progress`` need users that arrived on given days, and Cognito
    sets ``UserCreateDate`` itself. Stored naive UTC, as moto stores it."""
    import datetime

    created = body.get("created")
    if not isinstance(created, (int, float)) or isinstance(created, bool):
        raise ValueError("created must be Unix seconds (a number)")
    when = datetime.datetime.fromtimestamp(created, datetime.timezone.utc).replace(tzinfo=None)
    with BACKEND_LOCK:
        user, missing = _pool_user(pool_id, username)
        if missing is not None:
            return missing
        user.create_date = when
        user.last_modified_date = when
        return _json(200, {"username": user.username, "created": when.isoformat()})


def _import_jobs(rest: list[str]):
    if not rest:
        jobs = import_jobs.REGISTRY.all()
        return _json(200, [_job_summary(job) for job in jobs])
    job = import_jobs.REGISTRY.get(rest[0])
    if job is None:
        return _json(404, {"error": f"Import job {rest[0]} does not exist."})
    if rest[1:] == []:
        return _json(200, _job_summary(job))
    if rest[1:] == ["csv"]:
        if job.upload is None:
            return _json(404, {"error": f"No file was uploaded for {job.job_id} (or it expired)."})
        return 200, [("Content-Type", "text/csv; charset=utf-8"),
                     ("Content-Length", str(len(job.upload)))], job.upload
    if rest[1:] == ["log"]:
        with BACKEND_LOCK:
            group = logs_backend(job.account_id, job.region).groups.get(job.log_group)
            stream = group.streams.get(job.log_stream) if group else None
            lines = [event.message for event in stream.events] if stream else []
        return _json(200, {"log_group": job.log_group, "log_stream": job.log_stream, "lines": lines})
    return _json(404, {"error": "unknown import job endpoint"})


def _job_summary(job) -> dict:
    return {
        **job.to_json(),
        "AccountId": job.account_id,
        "Region": job.region,
        "LogGroup": job.log_group,
        "LogStream": job.log_stream,
        "UploadedBytes": None if job.upload is None else len(job.upload),
    }
