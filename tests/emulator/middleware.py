"""The WSGI layer in front of moto's server app: routes the emulator's own URLs, applies quotas and
faults, counts calls, and serialises access to moto's backends.

Why this module exists: quotas, faults and counters concern the HTTP exchange (a throttled call
never reaches the backend; a ``drop_after`` call reaches it but its answer never leaves), so they
belong around moto's app, not inside its models.

Per request, in order:
1. ``/_emulator/...`` -> the control API, ``/moto-api/...`` -> moto (never throttled, faulted or
   counted; moto's reset also forgets the import jobs).
2. The operation is named: ``X-Amz-Target``'s action (``AdminCreateUser``, ``GetLogEvents``),
   ``ImportUpload`` for the presigned upload URL, ``S3.<METHOD>`` for anything else.
3. Counted; for Cognito operations the quota bucket is asked (over quota: HTTP 400
   TooManyRequestsException "Rate exceeded").
4. Faults: delay, then throttle (400 TooManyRequestsException), internal_error (500
   InternalErrorException), drop_before (connection closed unanswered, no work done),
   drop_after (the work is done, then the connection is closed unanswered), or truncate_body
   (S3.GET: the answer's headers announce the whole body, the connection closes part-way).
5. Cognito and CloudWatch Logs calls run under :data:`shared.BACKEND_LOCK`, and so do S3's
   conditional writes (``If-Match`` / ``If-None-Match``: atomic check-and-write, as in S3); other
   S3 requests stream through.
"""

from __future__ import annotations

import io
import socket
import time

import control
import import_jobs
from faults import FAULTS
from quotas import QUOTAS
from shared import BACKEND_LOCK, COGNITO_TARGET_PREFIX, aws_json_headers, json_error_body
from stats import STATS

_STATUS_TEXT = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
                411: "Length Required", 500: "Internal Server Error"}


class ConnectionDropped(ConnectionAbortedError):
    """Raised after closing the client's socket on purpose; werkzeug treats it as a dropped
    connection and writes nothing."""


def _status_line(status: int) -> str:
    return f"{status} {_STATUS_TEXT.get(status, 'Unknown')}"


class EmulatorMiddleware:
    def __init__(self, moto_app):
        self.moto_app = moto_app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_emulator/") or path == "/_emulator":
            status, headers, body = control.handle(environ)
            start_response(_status_line(status), headers)
            return [body]
        if path.startswith("/moto-api"):
            if path.startswith("/moto-api/reset"):
                # moto's own reset: forget the import jobs that referred to the old backends too.
                with BACKEND_LOCK:
                    import_jobs.REGISTRY.reset()
            return self.moto_app(environ, start_response)

        operation, is_cognito, locked = self._classify(environ, path)
        STATS.call(operation, is_cognito)
        if is_cognito and not QUOTAS.try_acquire(operation):
            STATS.throttled(operation, is_cognito)
            return self._aws_error(start_response, 400, "TooManyRequestsException", "Rate exceeded")

        decision = FAULTS.decide(operation, is_cognito)
        if decision.delay_ms:
            STATS.delayed(operation)
            time.sleep(decision.delay_ms / 1000.0)
        if decision.kind:
            STATS.fault(operation, decision.kind)
        if decision.kind == "throttle":
            return self._aws_error(start_response, 400, "TooManyRequestsException", "Rate exceeded")
        if decision.kind == "internal_error":
            return self._aws_error(
                start_response, 500, "InternalErrorException",
                "Amazon Cognito encountered an internal error (injected by the emulator).",
            )
        if decision.kind == "drop_before":
            self._drop(environ)
        if decision.kind == "truncate_body":
            STATS.served(operation, is_cognito)
            return self._truncated(environ, start_response, decision.truncate_after_bytes)

        if not locked and operation != "ImportUpload" and decision.kind != "drop_after":
            STATS.served(operation, is_cognito)
            return self.moto_app(environ, start_response)  # S3: streamed through
        status, headers, body = self._serve_buffered(environ, operation, locked)
        STATS.served(operation, is_cognito)
        if decision.kind == "drop_after":
            self._drop(environ)
        start_response(status, headers)
        return [body]

    @staticmethod
    def _classify(environ, path: str) -> tuple[str, bool, bool]:
        """(operation name, is it a Cognito operation, must it hold BACKEND_LOCK)."""
        if path.startswith("/_import_upload/"):
            return "ImportUpload", False, False
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if "." in target:
            prefix, operation = target.split(".", 1)
            return operation, prefix == COGNITO_TARGET_PREFIX, True
        method = environ.get("REQUEST_METHOD", "GET")
        # S3 conditional writes (PutObject / CompleteMultipartUpload with If-None-Match or If-Match,
        # DeleteObject with If-Match) are atomic in S3: of two concurrent writers with the same
        # condition one wins, the other gets 412 (or 409 ConditionalRequestConflict). moto checks
        # the condition and writes in two steps, so such requests run under BACKEND_LOCK.
        conditional = environ.get("HTTP_IF_MATCH") or environ.get("HTTP_IF_NONE_MATCH")
        return f"S3.{method}", False, bool(conditional) and method in ("PUT", "POST", "DELETE")

    def _serve_buffered(self, environ, operation: str, locked: bool) -> tuple[str, list, bytes]:
        """Runs the request to completion and returns (status line, headers, body)."""
        if operation == "ImportUpload":
            status, headers, body = import_jobs.handle_upload(environ)
            return _status_line(status), headers, body
        if locked:
            # Read the (small JSON) body before taking the lock: a slow client must not hold it.
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length:
                body = environ["wsgi.input"].read(length)
            elif environ.get("wsgi.input_terminated"):  # chunked: read to the end
                body = environ["wsgi.input"].read()
            else:
                body = b""
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        captured: dict = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: captured.setdefault("written", []).append(data)

        def run_moto() -> bytes:
            result = self.moto_app(environ, capture)
            try:
                return b"".join(captured.get("written", [])) + b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()

        if locked:
            with BACKEND_LOCK:
                body = run_moto()
        else:
            body = run_moto()
        return captured["status"], captured["headers"], body

    def _truncated(self, environ, start_response, limit: int):
        """Streams moto's answer (headers as they are, Content-Length included) but only its first
        ``limit`` body bytes, then closes the connection: the client sees the body break off."""
        result = self.moto_app(environ, start_response)

        def body():
            sent = 0
            try:
                for chunk in result:
                    if sent + len(chunk) >= limit:
                        if limit > sent:
                            yield chunk[: limit - sent]
                        break
                    sent += len(chunk)
                    yield chunk
            finally:
                if hasattr(result, "close"):
                    result.close()
            self._drop(environ)

        return body()

    @staticmethod
    def _aws_error(start_response, status: int, error_type: str, message: str):
        body = json_error_body(error_type, message)
        start_response(_status_line(status), aws_json_headers(body, error_type))
        return [body]

    @staticmethod
    def _drop(environ):
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        raise ConnectionDropped("dropped by an emulator fault")
