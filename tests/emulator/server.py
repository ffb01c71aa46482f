#!/usr/bin/env python3
"""cognito-migrate's local Cognito + S3 emulator: moto's server with Cognito's user import jobs,
quotas, injected faults and a control API added.

Why this module exists: it is the entry point. It installs the additions into moto (the import-job
operations on ``moto.cognitoidp.responses.CognitoIdpResponse``, the sign-in and user-index patches
of ``signin.py``), wraps moto's WSGI app in ``middleware.EmulatorMiddleware`` and runs
``moto.server.main`` on a loopback address. One port serves cognito-idp, S3, CloudWatch Logs and
``/_emulator/...``.

GetCSVHeader and password hashes: ``GetCSVHeader`` answers Cognito's documented column order (the
19 standard attributes ``name`` ... ``updated_at``, the pool's ``custom:`` attributes in schema
order, then ``cognito:mfa_enabled`` and ``cognito:username``). AWS's documentation shows this
header without any password column, and its page on importing password hashes could not be
consulted, so this project decides: the header from GetCSVHeader does NOT contain
``password_hash``; the CSV of a job created with a ``PasswordHashingAlgorithm`` carries exactly one
extra column, ``password_hash``, which may stand anywhere (columns are matched by name). A file for
a job without an algorithm must not have it, and a file for a job with one must (else the job
fails). Accepted hash encodings: ``hashes.parse_import_hash``. The other rules: ``csv_import.py``.

Usage::

    python tests/emulator/server.py --port 5005 [--quotas] [--rate UserCreation=10]
        [--quota-mode sliding_window] [--quota-mode UserCreation=sliding_window]
        [--presign-expiry-seconds 900] [--job-expiry-seconds 86400]
        [--import-rows-per-second 20000] [--import-pending-delay-seconds 0.2]
        [--csv-quoting documented|rfc4180] [--no-require-auto-verified]
        [--hash-notation PBKDF2_SHA256=passlib]
        [--fault-seed 7] [--config JSON] [--log-requests]

``--config`` (and the environment variable ``COGNITO_MIGRATE_EMULATOR_CONFIG``) take the JSON of
``POST /_emulator/config``; the flags are applied after it. See tests/emulator/README.md.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
# No __pycache__ next to the sources: the repository does not ignore it.
sys.dont_write_bytecode = True


def _loopback(host: str) -> str:
    if host == "localhost":
        return host
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{host} is not a loopback address; the emulator binds loopback only")


def _rate(text: str) -> tuple[str, float]:
    category, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return category, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rate takes CATEGORY=RPS, not {text!r}") from None


def _notation(text: str) -> tuple[str, str]:
    algorithm, sep, notation = text.partition("=")
    if not sep or not algorithm or not notation:
        raise argparse.ArgumentTypeError(f"--hash-notation takes ALGORITHM=NOTATION, not {text!r}")
    return algorithm, notation


def _quota_mode(text: str) -> tuple[str | None, str]:
    """``MODE`` (every category) or ``CATEGORY=MODE``; checked when applied."""
    category, sep, mode = text.rpartition("=")
    return (category if sep else None), mode


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int,
                        default=int(os.environ.get("COGNITO_MIGRATE_EMULATOR_PORT", "5005")))
    parser.add_argument("--host", type=_loopback, default="127.0.0.1")
    parser.add_argument("--config", help="JSON object, as for POST /_emulator/config")
    parser.add_argument("--quotas", action="store_true", help="enforce Cognito's request-rate quotas")
    parser.add_argument("--rate", type=_rate, action="append", default=[],
                        metavar="CATEGORY=RPS", help="override one quota category's rate")
    parser.add_argument("--quota-mode", type=_quota_mode, action="append", default=[],
                        metavar="[CATEGORY=]MODE",
                        help="token_bucket (default) or sliding_window, for every category or one")
    parser.add_argument("--burst-seconds", type=float)
    parser.add_argument("--presign-expiry-seconds", type=float)
    parser.add_argument("--job-expiry-seconds", type=float)
    parser.add_argument("--import-rows-per-second", type=float)
    parser.add_argument("--import-pending-delay-seconds", type=float)
    parser.add_argument("--csv-quoting", choices=("documented", "rfc4180"),
                        help="CSV value delimiting (default: Cognito's documented backslash format)")
    parser.add_argument("--no-require-auto-verified", action="store_true",
                        help="accept rows and pools without a verified auto-verified attribute")
    parser.add_argument("--hash-notation", type=_notation, action="append", default=[],
                        metavar="ALGORITHM=NOTATION",
                        help="accept only this password_hash notation for the algorithm")
    parser.add_argument("--fault-seed", type=int, help="seed the fault draws (rules via --config)")
    parser.add_argument("--log-requests", action="store_true", help="log every HTTP request")
    return parser.parse_args(argv)


def initial_config(args: argparse.Namespace) -> list[dict]:
    """The configuration updates to apply at start, in order."""
    updates = []
    for source in (os.environ.get("COGNITO_MIGRATE_EMULATOR_CONFIG"), args.config):
        if source:
            updates.append(json.loads(source))
    flags: dict = {}
    for key in ("presign_expiry_seconds", "job_expiry_seconds", "import_rows_per_second",
                "import_pending_delay_seconds", "csv_quoting"):
        if getattr(args, key) is not None:
            flags[key] = getattr(args, key)
    if args.no_require_auto_verified:
        flags["require_auto_verified"] = False
    if args.hash_notation:
        flags["import_hash_notations"] = dict(args.hash_notation)
    quota_flags: dict = {}
    if args.quotas:
        quota_flags["enabled"] = True
    if args.rate:
        quota_flags["rates"] = dict(args.rate)
    if args.burst_seconds is not None:
        quota_flags["burst_seconds"] = args.burst_seconds
    for category, mode in args.quota_mode:
        if category is None:
            quota_flags["mode"] = mode
        else:
            quota_flags.setdefault("modes", {})[category] = mode
    if quota_flags:
        flags["quotas"] = quota_flags
    if args.fault_seed is not None:
        rules: dict = {}
        for update in updates:  # keep the rules given by --config / the environment
            rules = update.get("faults", {}).get("rules", rules)
        flags["faults"] = {"seed": args.fault_seed, "rules": rules}
    if flags:
        updates.append(flags)
    return updates


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # `kill -USR1 <pid>` prints every thread's stack to the log (to diagnose a hang).
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1, all_threads=True)

    import moto.server

    import admin_users
    import federation
    import import_jobs
    import list_users
    import signin
    import user_updates
    from config import SETTINGS
    from middleware import EmulatorMiddleware

    for update in initial_config(args):
        SETTINGS.update(update)
    import_jobs.REGISTRY.base_url = f"http://{args.host}:{args.port}"
    import_jobs.install()
    signin.install()
    list_users.install()  # after signin: it wraps signin's ListUsers
    admin_users.install()
    user_updates.install()
    federation.install()

    if not args.log_requests:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    run_simple = moto.server.run_simple

    def run_wrapped(host, port, application, **kwargs):
        print(f"cognito-migrate emulator on http://{host}:{port}", flush=True)
        run_simple(host, port, EmulatorMiddleware(application), **kwargs)

    moto.server.run_simple = run_wrapped
    moto.server.main(["--host", args.host, "--port", str(args.port)])


if __name__ == "__main__":
    main()
