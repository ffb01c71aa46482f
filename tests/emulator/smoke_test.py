#!/usr/bin/env python3
"""Smoke test of the emulator against a running server, with boto3 (an independent client).

    .venv/bin/python tests/emulator/smoke_test.py http://127.0.0.1:5005

Why this file exists: it exercises every operation and knob the emulator adds to moto (import
jobs end to end, the upload URL's S3 rules, expiries, the one-active-job limit, password-hash
sign-in, CloudWatch Logs, quotas, faults, the control API) and asserts the documented behaviour,
so a change to the emulator that breaks the contract the Rust tests rely on shows up here first.
It resets the emulator first and last. Ends with the line ``N passed, M failed``.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

import bcrypt
import boto3
import botocore.exceptions
from argon2 import low_level
from botocore.config import Config

ENDPOINT = (sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5005").rstrip("/")
ROLE = "arn:aws:iam::123456789012:role/CognitoImportRole"
STANDARD = [
    "name", "given_name", "family_name", "middle_name", "nickname", "preferred_username",
    "profile", "picture", "website", "email", "email_verified", "gender", "birthdate",
    "zoneinfo", "locale", "phone_number", "phone_number_verified", "address", "updated_at",
]
PASSWORD = "Corr3ct-horse!"

_config = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30)
_unvalidated = Config(retries={"total_max_attempts": 1}, parameter_validation=False)
_kw = dict(endpoint_url=ENDPOINT, region_name="us-east-1",
           aws_access_key_id="test", aws_secret_access_key="test")
idp = boto3.client("cognito-idp", config=_config, **_kw)
idp_raw = boto3.client("cognito-idp", config=_unvalidated, **_kw)
logs = boto3.client("logs", config=_config, **_kw)

RESULTS = {"passed": 0, "failed": 0}


def check(name):
    def run(function):
        try:
            function()
        except Exception:
            RESULTS["failed"] += 1
            print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)
        else:
            RESULTS["passed"] += 1
            print(f"ok   {name}", flush=True)
        return function
    return run


# --- helpers ------------------------------------------------------------------------------------


def control(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{ENDPOINT}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def configure(**body):
    status, answer = control("POST", "/_emulator/config", body)
    assert status == 200, answer
    return answer


def put(url, data: bytes, headers=None, method="PUT", chunked=False):
    """An HTTP request to a presigned URL: (status, body text)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    path = parts.path + ("?" + parts.query if parts.query else "")
    headers = dict(headers or {})
    if chunked:
        connection.putrequest(method, path)
        for key, value in {**headers, "Transfer-Encoding": "chunked"}.items():
            connection.putheader(key, value)
        connection.endheaders()
        connection.send(f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n")
    else:
        connection.request(method, path, body=data, headers=headers)
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()
    return response.status, body


SSE = {"x-amz-server-side-encryption": "aws:kms"}


def error_code(call, *args, **kwargs) -> str:
    try:
        call(*args, **kwargs)
    except botocore.exceptions.ClientError as error:
        return error.response["Error"]["Code"]
    raise AssertionError(f"{call.__name__} succeeded, an error was expected")


def csv_bytes(columns, rows, bom=False) -> bytes:
    def escape(value):
        return str(value).replace(",", "\\,")

    lines = [",".join(columns)]
    for row in rows:
        lines.append(",".join(escape(row.get(column, "")) for column in columns))
    text = "\n".join(lines) + "\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


def user_row(username, **extra):
    row = {"cognito:username": username, "email": f"{username}@example.com",
           "email_verified": "true", "cognito:mfa_enabled": "false"}
    row.update(extra)
    return row


def new_pool(name="smoke", **kwargs):
    kwargs.setdefault("AutoVerifiedAttributes", ["email"])
    return idp.create_user_pool(PoolName=name, **kwargs)["UserPool"]["Id"]


def new_client(pool_id):
    return idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="smoke",
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_USER_PASSWORD_AUTH",
                           "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]


def create_job(pool_id, name="job", algorithm=None):
    kwargs = {"PasswordHashingAlgorithm": algorithm} if algorithm else {}
    return idp.create_user_import_job(
        JobName=name, UserPoolId=pool_id, CloudWatchLogsRoleArn=ROLE, **kwargs
    )["UserImportJob"]


def wait_job(pool_id, job_id, statuses=("Succeeded", "Failed", "Stopped"), timeout=60):
    deadline = time.time() + timeout
    while True:
        job = idp.describe_user_import_job(UserPoolId=pool_id, JobId=job_id)["UserImportJob"]
        if job["Status"] in statuses:
            return job
        assert time.time() < deadline, f"job stuck in {job['Status']}"
        time.sleep(0.05)


def run_import(pool_id, columns, rows, algorithm=None, name="job", bom=False):
    job = create_job(pool_id, name, algorithm)
    status, body = put(job["PreSignedUrl"], csv_bytes(columns, rows, bom), SSE)
    assert status == 200, body
    idp.start_user_import_job(UserPoolId=pool_id, JobId=job["JobId"])
    return wait_job(pool_id, job["JobId"])


def emulator_user(pool_id, username):
    quoted = urllib.parse.quote(username, safe="")
    return control("GET", f"/_emulator/users/{pool_id}/{quoted}")


def auth(pool_id, client_id, username, password):
    return idp.admin_initiate_auth(
        UserPoolId=pool_id, ClientId=client_id, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def make_hash(algorithm: str, password: str, **params) -> str:
    secret = password.encode()
    salt = b"0123456789abcdef"
    if algorithm == "BCRYPT":
        return bcrypt.hashpw(secret, bcrypt.gensalt(params.get("cost", 4))).decode()
    if algorithm == "ARGON2ID":
        return low_level.hash_secret(
            secret, salt, time_cost=params.get("t", 2), memory_cost=params.get("m", 256),
            parallelism=params.get("p", 1), hash_len=32, type=low_level.Type.ID,
        ).decode()
    if algorithm == "PBKDF2_SHA256":
        iterations = params.get("i", 1000)
        digest = hashlib.pbkdf2_hmac("sha256", secret, salt, iterations)
        return f"$pbkdf2-sha256$i={iterations},l=32${b64(salt)}${b64(digest)}"
    if algorithm == "SCRYPT":
        ln, r, p = params.get("ln", 4), params.get("r", 8), params.get("p", 1)
        digest = hashlib.scrypt(secret, salt=salt, n=1 << ln, r=r, p=p, dklen=32,
                                maxmem=512 * 1024 * 1024)
        return f"$scrypt$ln={ln},r={r},p={p}${b64(salt)}${b64(digest)}"
    raise ValueError(algorithm)


def log_lines(pool_id, pool_name, job):
    stream = f"{job['JobId']}/{job['JobName']}"
    events = logs.get_log_events(
        logGroupName=f"/aws/cognito/userpools/{pool_id}/{pool_name}",
        logStreamName=stream, startFromHead=True,
    )["events"]
    return [event["message"] for event in events]


# --- tests ----------------------------------------------------------------------------------------


@check("health and reset")
def _():
    assert control("GET", "/_emulator/health")[0] == 200
    assert control("POST", "/_emulator/reset")[0] == 200
    assert idp.list_user_pools(MaxResults=60)["UserPools"] == []


@check("GetCSVHeader: documented order, custom attributes, no password_hash")
def _():
    pool_id = new_pool("header", Schema=[
        {"Name": "tier", "AttributeDataType": "String", "Mutable": True},
        {"Name": "score", "AttributeDataType": "Number", "Mutable": True},
    ])
    answer = idp.get_csv_header(UserPoolId=pool_id)
    assert answer["UserPoolId"] == pool_id
    assert answer["CSVHeader"] == STANDARD + [
        "custom:tier", "custom:score", "cognito:mfa_enabled", "cognito:username"
    ], answer["CSVHeader"]
    plain = new_pool("plain")
    assert idp.get_csv_header(UserPoolId=plain)["CSVHeader"] == STANDARD + [
        "cognito:mfa_enabled", "cognito:username"
    ]
    assert error_code(idp.get_csv_header, UserPoolId="us-east-1_missing") == "ResourceNotFoundException"


@check("CreateUserImportJob: Created, job id, presigned URL, algorithm echoed")
def _():
    pool_id = new_pool("create")
    job = create_job(pool_id, "create-job", "BCRYPT")
    assert job["Status"] == "Created"
    assert re.fullmatch(r"import-[0-9A-Za-z]{10}", job["JobId"]), job["JobId"]
    assert job["PasswordHashingAlgorithm"] == "BCRYPT"
    assert job["ImportedUsers"] == job["SkippedUsers"] == job["FailedUsers"] == 0
    assert job["CloudWatchLogsRoleArn"] == ROLE and job["JobName"] == "create-job"
    url = urllib.parse.urlsplit(job["PreSignedUrl"])
    assert url.hostname == "127.0.0.1" and url.path == f"/_import_upload/{job['JobId']}"
    query = urllib.parse.parse_qs(url.query)
    assert query["X-Amz-Expires"] == ["900"] and query["X-Amz-Signature"][0]
    assert "StartDate" not in job and "CompletionDate" not in job
    plain = create_job(pool_id, "plain")
    assert "PasswordHashingAlgorithm" not in plain
    assert error_code(idp_raw.create_user_import_job, JobName="x", UserPoolId=pool_id,
                      CloudWatchLogsRoleArn=ROLE, PasswordHashingAlgorithm="MD5") == \
        "InvalidParameterException"
    assert error_code(idp.create_user_import_job, JobName="x", UserPoolId="us-east-1_nope",
                      CloudWatchLogsRoleArn=ROLE) == "ResourceNotFoundException"


@check("upload URL: PUT with SSE aws:kms only, signature, Content-Length; Start needs a file")
def _():
    pool_id = new_pool("upload")
    job = create_job(pool_id)
    data = csv_bytes(idp.get_csv_header(UserPoolId=pool_id)["CSVHeader"], [user_row("u1")])
    status, body = put(job["PreSignedUrl"], data)  # no SSE header
    assert status == 403 and "<Code>SignatureDoesNotMatch</Code>" in body, (status, body)
    status, body = put(job["PreSignedUrl"], data, {"x-amz-server-side-encryption": "AES256"})
    assert status == 403, status
    status, body = put(job["PreSignedUrl"].replace("X-Amz-Signature=", "X-Amz-Signature=0"), data, SSE)
    assert status == 403 and "SignatureDoesNotMatch" in body
    status, _ = put(job["PreSignedUrl"], b"", SSE, method="GET")
    assert status == 403
    status, body = put(job["PreSignedUrl"], data, SSE, chunked=True)
    assert status == 411 and "MissingContentLength" in body, (status, body)
    assert error_code(idp.start_user_import_job, UserPoolId=pool_id, JobId=job["JobId"]) == \
        "PreconditionNotMetException"
    status, body = put(job["PreSignedUrl"], data, SSE)
    assert status == 200, body
    status, stored = control("GET", f"/_emulator/import_jobs/{job['JobId']}")
    assert stored["UploadedBytes"] == len(data)


@check("presigned URL expiry (403 Request has expired) and job expiry (Expired)")
def _():
    pool_id = new_pool("expiry")
    configure(presign_expiry_seconds=1)
    job = create_job(pool_id)
    assert "X-Amz-Expires=1&" in job["PreSignedUrl"]
    time.sleep(1.3)
    status, body = put(job["PreSignedUrl"], b"x", SSE)
    assert status == 403 and "Request has expired" in body and "AccessDenied" in body, body
    configure(presign_expiry_seconds=900, job_expiry_seconds=1)
    job = create_job(pool_id)
    time.sleep(1.2)
    described = idp.describe_user_import_job(UserPoolId=pool_id, JobId=job["JobId"])["UserImportJob"]
    assert described["Status"] == "Expired", described["Status"]
    assert described["CompletionMessage"] == "The user import job has expired."
    assert error_code(idp.start_user_import_job, UserPoolId=pool_id, JobId=job["JobId"]) == \
        "InvalidParameterException"
    configure(job_expiry_seconds=86400)


@check("import: SUCCEEDED / SKIPPED / FAILED rows, counters, statuses, log lines")
def _():
    pool_id = new_pool("rows", Schema=[{"Name": "tier", "AttributeDataType": "String", "Mutable": True}])
    idp.admin_create_user(UserPoolId=pool_id, Username="existing", MessageAction="SUPPRESS")
    columns = idp.get_csv_header(UserPoolId=pool_id)["CSVHeader"]
    rows = [
        user_row("ann", given_name="Ann", family_name="Lee, Jr", **{"custom:tier": "gold"}),  # 2
        user_row("existing"),                                                                   # 3
        user_row("has space"),                                                                  # 4
        user_row("bad-phone", phone_number="12345"),                                            # 5
        user_row("unverified", email_verified="false"),                                         # 6
        user_row("ann"),                                                                        # 7
        user_row("ben", email_verified="TRUE", **{"cognito:mfa_enabled": "FALSE"}),          # 8
        user_row("no-mfa", **{"cognito:mfa_enabled": ""}),                                      # 9
    ]
    configure(too_many_failures_fraction=None)
    job = run_import(pool_id, columns, rows, name="rows-job")
    assert job["Status"] == "Succeeded", job
    assert job["CompletionMessage"] == "Import Job Completed Successfully."
    assert (job["ImportedUsers"], job["SkippedUsers"], job["FailedUsers"]) == (2, 2, 4), job
    assert job["StartDate"] <= job["CompletionDate"]
    lines = log_lines(pool_id, "rows", job)
    assert len(lines) == 8
    assert lines[0] == "[SUCCEEDED] Line Number 2 - The import succeeded."
    assert lines[1] == "[SKIPPED] Line Number 3 - The user already exists."
    assert lines[2].startswith("[FAILED] Line Number 4 - ")
    assert lines[3].startswith("[FAILED] Line Number 5 - ")
    assert lines[4] == ("[FAILED] Line Number 6 - The User Record does not set any of the auto "
                        "verified attributes to true. (Example: email_verified to true).")
    assert lines[5] == "[SKIPPED] Line Number 7 - The user already exists."
    assert lines[6] == "[SUCCEEDED] Line Number 8 - The import succeeded."
    assert lines[7].startswith("[FAILED] Line Number 9 - ")
    status, ann = emulator_user(pool_id, "ann")
    assert status == 200 and ann["status"] == "RESET_REQUIRED" and not ann["has_imported_hash"]
    assert ann["attributes"]["family_name"] == "Lee, Jr"
    assert ann["attributes"]["custom:tier"] == "gold"
    assert ann["attributes"]["email_verified"] == "true"
    got = idp.admin_get_user(UserPoolId=pool_id, Username="ann")
    assert got["UserStatus"] == "RESET_REQUIRED"
    filtered = logs.filter_log_events(
        logGroupName="/aws/cognito/userpools/" + pool_id + "/rows", filterPattern="SKIPPED")
    assert len(filtered["events"]) == 2
    status, mirrored = control("GET", f"/_emulator/import_jobs/{job['JobId']}/log")
    assert mirrored["lines"] == lines
    configure(too_many_failures_fraction=0.5)


@check("import rules: case-insensitive pool, CRLF, required and custom attributes, MFA ON")
def _():
    pool_id = new_pool(
        "rules",
        UsernameConfiguration={"CaseSensitive": False},
        Schema=[
            {"Name": "given_name", "AttributeDataType": "String", "Required": True, "Mutable": True},
            {"Name": "level", "AttributeDataType": "Number", "Mutable": True,
             "NumberAttributeConstraints": {"MinValue": "1", "MaxValue": "10"}},
            {"Name": "code", "AttributeDataType": "String", "Mutable": True,
             "StringAttributeConstraints": {"MinLength": "2", "MaxLength": "4"}},
        ],
    )
    idp.admin_create_user(UserPoolId=pool_id, Username="alice", MessageAction="SUPPRESS")
    columns = idp.get_csv_header(UserPoolId=pool_id)["CSVHeader"]
    assert columns[-4:] == ["custom:level", "custom:code", "cognito:mfa_enabled", "cognito:username"]
    rows = [
        user_row("ALICE", given_name="A"),                                   # 2 skipped
        user_row("gina", given_name="G", **{"custom:level": "5", "custom:code": "ab"}),  # 3 ok
        user_row("nogiven"),                                                 # 4 required
        user_row("lvl", given_name="L", **{"custom:level": "11"}),           # 5 above max
        user_row("code", given_name="C", **{"custom:code": "abcde"}),        # 6 too long
        user_row("quoted", given_name='"Q, R"'),                             # 7 ok: quotes literal
    ]
    data = csv_bytes(columns, rows).replace(b"\n", b"\r\n")
    configure(too_many_failures_fraction=None)
    job = create_job(pool_id)
    assert put(job["PreSignedUrl"], data, SSE)[0] == 200
    idp.start_user_import_job(UserPoolId=pool_id, JobId=job["JobId"])
    job = wait_job(pool_id, job["JobId"])
    lines = control("GET", f"/_emulator/import_jobs/{job['JobId']}/log")[1]["lines"]
    assert [line.split(" ")[0] for line in lines] == [
        "[SKIPPED]", "[SUCCEEDED]", "[FAILED]", "[FAILED]", "[FAILED]", "[SUCCEEDED]"], lines
    assert emulator_user(pool_id, "gina")[1]["attributes"]["custom:level"] == "5"
    assert emulator_user(pool_id, "quoted")[1]["attributes"]["given_name"] == '"Q, R"'
    idp.set_user_pool_mfa_config(UserPoolId=pool_id, MfaConfiguration="ON",
                                 SoftwareTokenMfaConfiguration={"Enabled": True})
    job = run_import(pool_id, columns, [user_row("m1", given_name="M"),
                                        user_row("m2", given_name="M", **{"cognito:mfa_enabled": "true"})])
    assert (job["ImportedUsers"], job["FailedUsers"]) == (1, 1), job
    assert emulator_user(pool_id, "m2")[1]["mfa_enabled"] is True
    configure(too_many_failures_fraction=0.5)


@check("CSV quoting: documented backslash format by default, rfc4180 on request")
def _():
    pool_id = new_pool("quoting")
    columns = ["password_hash"] + idp.get_csv_header(UserPoolId=pool_id)["CSVHeader"]
    argon = make_hash("ARGON2ID", PASSWORD)
    rows = {"q1": user_row("q1", given_name="Lee, Jr", password_hash=argon)}

    def quoted(row):
        fields = []
        for column in columns:
            value = str(row.get(column, ""))
            fields.append('"' + value.replace('"', '""') + '"' if "," in value or '"' in value else value)
        return ",".join(fields)

    data = (",".join(columns) + "\n" + quoted(rows["q1"]) + "\n").encode()
    configure(too_many_failures_fraction=None)
    job = create_job(pool_id, "documented", "ARGON2ID")
    put(job["PreSignedUrl"], data, SSE)
    idp.start_user_import_job(UserPoolId=pool_id, JobId=job["JobId"])
    assert wait_job(pool_id, job["JobId"])["FailedUsers"] == 1
    configure(csv_quoting="rfc4180")
    job = create_job(pool_id, "rfc4180", "ARGON2ID")
    put(job["PreSignedUrl"], data, SSE)
    idp.start_user_import_job(UserPoolId=pool_id, JobId=job["JobId"])
    assert wait_job(pool_id, job["JobId"])["ImportedUsers"] == 1
    user = emulator_user(pool_id, "q1")[1]
    assert user["attributes"]["given_name"] == "Lee, Jr" and user["has_imported_hash"]
    configure(csv_quoting="documented", too_many_failures_fraction=0.5)


@check("import: too many failed/skipped rows -> Failed with Cognito's message")
def _():
    pool_id = new_pool("toomany")
    columns = idp.get_csv_header(UserPoolId=pool_id)["CSVHeader"]
    job = run_import(pool_id, columns, [user_row("ok1"), user_row("bad one"), user_row("bad two")])
    assert job["Status"] == "Failed"
    assert job["CompletionMessage"] == "Too many users have failed or been skipped during the import."
    assert job["ImportedUsers"] == 1 and job["FailedUsers"] == 2


@check("import: file-level failures (BOM, missing/unknown column, password_hash rules)")
def _():
    pool_id = new_pool("files")
    columns = idp.get_csv_header(UserPoolId=pool_id)["CSVHeader"]
    job = run_import(pool_id, columns, [user_row("bom")], bom=True)
    assert job["Status"] == "Failed" and "byte order mark" in job["CompletionMessage"], job
    assert job["ImportedUsers"] == 0
    assert emulator_user(pool_id, "bom")[0] == 404
    job = run_import(pool_id, [c for c in columns if c != "locale"], [user_row("x1")])
    assert job["Status"] == "Failed" and "locale" in job["CompletionMessage"], job
    job = run_import(pool_id, columns + ["shoe_size"], [user_row("x2")])
    assert job["Status"] == "Failed" and "shoe_size" in job["CompletionMessage"], job
    job = run_import(pool_id, columns + ["password_hash"], [user_row("x3")])  # no algorithm
    assert job["Status"] == "Failed" and "password_hash" in job["CompletionMessage"], job
    job = run_import(pool_id, columns, [user_row("x4")], algorithm="BCRYPT")  # column missing
    assert job["Status"] == "Failed" and "password_hash" in job["CompletionMessage"], job


@check("import: more than 500,000 users or 100 MB -> Failed before any user is created")
def _():
    pool_id = new_pool("limits")
    columns = idp.get_csv_header(UserPoolId=pool_id)["CSVHeader"]
    header = ",".join(columns).encode() + b"\n"
    line = b",".join(b"" for _ in columns) + b"\n"
    for data, words in ((header + line * 500_001, "500000"), (header + b"x" * (100 * 1024 * 1024), "100 MB")):
        job = create_job(pool_id)
        assert put(job["PreSignedUrl"], data, SSE)[0] == 200
        idp.start_user_import_job(UserPoolId=pool_id, JobId=job["JobId"])
        job = wait_job(pool_id, job["JobId"])
        assert job["Status"] == "Failed" and words in job["CompletionMessage"], job
        assert job["ImportedUsers"] == job["FailedUsers"] == 0


@check("hash import: every algorithm CONFIRMED, sign-in verifies the password, caps refused")
def _():
    pool_id = new_pool("hashes")
    client_id = new_client(pool_id)
    columns = ["password_hash"] + idp.get_csv_header(UserPoolId=pool_id)["CSVHeader"]
    over_cap = {"BCRYPT": {"cost": 13}, "ARGON2ID": {"m": 19457}, "PBKDF2_SHA256": {"i": 600001},
                "SCRYPT": {"ln": 17}}
    configure(too_many_failures_fraction=None)
    for algorithm in ("BCRYPT", "ARGON2ID", "PBKDF2_SHA256", "SCRYPT"):
        prefix = algorithm.lower().replace("_", "")
        rows = [
            user_row(f"{prefix}-ok", password_hash=make_hash(algorithm, PASSWORD)),
            user_row(f"{prefix}-nohash", password_hash=""),
            user_row(f"{prefix}-garbage", password_hash="$not$a$hash"),
            user_row(f"{prefix}-overcap",
                     password_hash="$2b$13$" + "a" * 53 if algorithm == "BCRYPT"
                     else make_hash(algorithm, PASSWORD, **over_cap[algorithm])),
        ]
        job = run_import(pool_id, columns, rows, algorithm=algorithm, name=f"{prefix}-job")
        assert job["PasswordHashingAlgorithm"] == algorithm
        assert (job["ImportedUsers"], job["FailedUsers"]) == (2, 2), (algorithm, job)
        status, user = emulator_user(pool_id, f"{prefix}-ok")
        assert user["status"] == "CONFIRMED" and user["has_imported_hash"], user
        assert user["imported_hash_algorithm"] == algorithm and "password_hash" not in json.dumps(user)
        assert emulator_user(pool_id, f"{prefix}-nohash")[1]["status"] == "RESET_REQUIRED"
        result = auth(pool_id, client_id, f"{prefix}-ok", PASSWORD)["AuthenticationResult"]
        assert result["AccessToken"] and result["IdToken"]
        assert error_code(auth, pool_id, client_id, f"{prefix}-ok", PASSWORD + "x") == \
            "NotAuthorizedException"
        lines = log_lines(pool_id, "hashes", job)
        assert lines[2].startswith("[FAILED] Line Number 4 - ") and lines[3].startswith(
            "[FAILED] Line Number 5 - "), lines
        for row in rows:
            if len(row["password_hash"]) > 20:
                assert not any(row["password_hash"] in line for line in lines), "hash in the log"
    try:
        auth(pool_id, client_id, "bcrypt-ok", "wrong")
    except botocore.exceptions.ClientError as error:
        assert error.response["Error"]["Message"] == "Incorrect username or password."
    assert error_code(auth, pool_id, client_id, "bcrypt-nohash", "whatever") == \
        "PasswordResetRequiredException"
    answer = idp.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
                               AuthParameters={"USERNAME": "scrypt-ok", "PASSWORD": PASSWORD})
    assert answer["AuthenticationResult"]["AccessToken"]
    idp.admin_set_user_password(UserPoolId=pool_id, Username="argon2id-ok",
                                Password="N3w-password!", Permanent=True)
    assert auth(pool_id, client_id, "argon2id-ok", "N3w-password!")["AuthenticationResult"]
    assert not emulator_user(pool_id, "argon2id-ok")[1]["has_imported_hash"]
    configure(too_many_failures_fraction=0.5)


@check("pool without auto-verified attributes: the job does not start (unless relaxed)")
def _():
    pool_id = idp.create_user_pool(PoolName="noauto")["UserPool"]["Id"]
    columns = idp.get_csv_header(UserPoolId=pool_id)["CSVHeader"]
    job = create_job(pool_id)
    assert put(job["PreSignedUrl"], csv_bytes(columns, [user_row("n1", email_verified="")]), SSE)[0] == 200
    assert error_code(idp.start_user_import_job, UserPoolId=pool_id, JobId=job["JobId"]) == \
        "PreconditionNotMetException"
    configure(require_auto_verified=False)
    idp.start_user_import_job(UserPoolId=pool_id, JobId=job["JobId"])
    assert wait_job(pool_id, job["JobId"])["ImportedUsers"] == 1
    configure(require_auto_verified=True)


@check("one active job per account: LimitExceededException; Stop: Stopping -> Stopped")
def _():
    pool_id = new_pool("limit")
    columns = idp.get_csv_header(UserPoolId=pool_id)["CSVHeader"]
    configure(import_rows_per_second=100, import_pending_delay_seconds=0.3)
    first = create_job(pool_id, "slow")
    assert put(first["PreSignedUrl"], csv_bytes(columns, [user_row(f"s{i}") for i in range(500)]), SSE)[0] == 200
    second = create_job(pool_id, "second")
    assert put(second["PreSignedUrl"], csv_bytes(columns, [user_row("t1")]), SSE)[0] == 200
    started = idp.start_user_import_job(UserPoolId=pool_id, JobId=first["JobId"])["UserImportJob"]
    assert started["Status"] == "Pending" and "StartDate" in started
    assert error_code(idp.start_user_import_job, UserPoolId=pool_id, JobId=first["JobId"]) == \
        "InvalidParameterException"
    assert error_code(idp.start_user_import_job, UserPoolId=pool_id, JobId=second["JobId"]) == \
        "LimitExceededException"
    wait_job(pool_id, first["JobId"], ("InProgress",))
    time.sleep(0.5)
    stopping = idp.stop_user_import_job(UserPoolId=pool_id, JobId=first["JobId"])["UserImportJob"]
    assert stopping["Status"] in ("Stopping", "Stopped"), stopping["Status"]
    stopped = wait_job(pool_id, first["JobId"], ("Stopped",))
    assert stopped["CompletionMessage"] == "The Import Job was stopped by the developer."
    assert 0 < stopped["ImportedUsers"] < 500, stopped["ImportedUsers"]
    assert error_code(idp.stop_user_import_job, UserPoolId=pool_id, JobId=first["JobId"]) == \
        "InvalidParameterException"
    configure(import_rows_per_second=20000, import_pending_delay_seconds=0.05)
    idp.start_user_import_job(UserPoolId=pool_id, JobId=second["JobId"])
    assert wait_job(pool_id, second["JobId"])["Status"] == "Succeeded"
    pending = create_job(pool_id, "stop-pending")
    put(pending["PreSignedUrl"], csv_bytes(columns, [user_row("p1")]), SSE)
    configure(import_pending_delay_seconds=5)
    idp.start_user_import_job(UserPoolId=pool_id, JobId=pending["JobId"])
    assert idp.stop_user_import_job(UserPoolId=pool_id, JobId=pending["JobId"])["UserImportJob"][
        "Status"] == "Stopped"
    configure(import_pending_delay_seconds=0.2)


@check("ListUserImportJobs: MaxResults 1..60, newest first, PaginationToken")
def _():
    pool_id = new_pool("list")
    ids = [create_job(pool_id, f"j{i}")["JobId"] for i in range(5)]
    assert error_code(idp_raw.list_user_import_jobs, UserPoolId=pool_id, MaxResults=0) == \
        "InvalidParameterException"
    assert error_code(idp_raw.list_user_import_jobs, UserPoolId=pool_id, MaxResults=61) == \
        "InvalidParameterException"
    seen, token = [], None
    while True:
        kwargs = {"PaginationToken": token} if token else {}
        page = idp.list_user_import_jobs(UserPoolId=pool_id, MaxResults=2, **kwargs)
        assert len(page["UserImportJobs"]) <= 2
        seen += [job["JobId"] for job in page["UserImportJobs"]]
        token = page.get("PaginationToken")
        if not token:
            break
    assert seen == list(reversed(ids)), (seen, ids)


@check("email-as-username pool: cognito:username is the email, user named by UUID")
def _():
    pool_id = new_pool("emailpool", UsernameAttributes=["email"])
    columns = idp.get_csv_header(UserPoolId=pool_id)["CSVHeader"]
    configure(too_many_failures_fraction=None)
    rows = [
        {"cognito:username": "eve@example.com", "email": "eve@example.com",
         "email_verified": "true", "cognito:mfa_enabled": "false"},
        {"cognito:username": "frank@example.com", "email_verified": "true",
         "cognito:mfa_enabled": "false"},
        {"cognito:username": "not-an-email", "email_verified": "true", "cognito:mfa_enabled": "false"},
        {"cognito:username": "eve@example.com", "email": "eve@example.com",
         "email_verified": "true", "cognito:mfa_enabled": "false"},
    ]
    job = run_import(pool_id, columns, rows)
    assert (job["ImportedUsers"], job["SkippedUsers"], job["FailedUsers"]) == (2, 1, 1), job
    eve = idp.admin_get_user(UserPoolId=pool_id, Username="eve@example.com")
    assert re.fullmatch(r"[0-9a-f-]{36}", eve["Username"]), eve["Username"]
    frank = {a["Name"]: a["Value"] for a in
             idp.admin_get_user(UserPoolId=pool_id, Username="frank@example.com")["UserAttributes"]}
    assert frank["email"] == "frank@example.com"
    assert error_code(idp.admin_create_user, UserPoolId=pool_id, Username="eve@example.com",
                      MessageAction="SUPPRESS") == "UsernameExistsException"
    configure(too_many_failures_fraction=0.5)


@check("ListUsers pages through every user exactly once")
def _():
    pool_id = new_pool("paging")
    columns = idp.get_csv_header(UserPoolId=pool_id)["CSVHeader"]
    run_import(pool_id, columns, [user_row(f"p{i:03d}") for i in range(150)])
    names, token = [], None
    while True:
        kwargs = {"PaginationToken": token} if token else {}
        page = idp.list_users(UserPoolId=pool_id, Limit=60, **kwargs)
        names += [user["Username"] for user in page["Users"]]
        token = page.get("PaginationToken")
        if not token:
            break
    assert sorted(names) == [f"p{i:03d}" for i in range(150)] and len(names) == 150
    assert error_code(idp_raw.list_users, UserPoolId=pool_id, Limit=61) == "InvalidParameterException"


@check("quotas: over UserCreation's rate -> TooManyRequestsException, counted in stats")
def _():
    pool_id = new_pool("quota")
    control("POST", "/_emulator/stats/reset")
    configure(quotas={"enabled": True, "rates": {"UserCreation": 5}, "burst_seconds": 1})
    codes = []
    for i in range(15):
        try:
            idp.admin_create_user(UserPoolId=pool_id, Username=f"q{i}", MessageAction="SUPPRESS")
            codes.append("ok")
        except botocore.exceptions.ClientError as error:
            codes.append(error.response["Error"]["Code"])
            assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
            assert error.response["Error"]["Message"] == "Rate exceeded"
    assert codes.count("ok") >= 5 and "TooManyRequestsException" in codes, codes
    stats = control("GET", "/_emulator/stats")[1]
    entry = stats["operations"]["AdminCreateUser"]
    assert entry["calls"] == 15 and entry["throttled"] == codes.count("TooManyRequestsException")
    assert stats["categories"]["UserCreation"]["throttled"] == entry["throttled"]
    assert idp.admin_get_user(UserPoolId=pool_id, Username="q0")  # UserRead is not throttled
    configure(quotas={"enabled": False, "rates": None})


@check("quotas: sliding_window admits at most N in ANY one-second window, a bucket bursts")
def _():
    # The window's semantics on a driven clock (the module itself; exact, not timing-dependent).
    import quotas

    q = quotas.Quotas()
    q.apply(q.validate({"enabled": True, "rates": {"UserCreation": 5},
                        "modes": {"UserCreation": "sliding_window"}}))
    admit = lambda t: q.try_acquire("AdminCreateUser", now=t)  # noqa: E731
    assert [admit(10.0 + 0.1 * i) for i in range(5)] == [True] * 5  # 10.0 .. 10.4
    assert not admit(10.5) and not admit(10.99)  # a token bucket at 5/s would admit these
    assert admit(11.0)  # 10.0 left the window (11.0 - 1 s, 11.0]: it is half-open
    assert not admit(11.05)  # 10.1 .. 10.4 and 11.0
    assert admit(11.15)  # 10.1 has left
    assert [admit(20.0 + 0.21 * i) for i in range(10)] == [True] * 10  # evenly spaced: never 6
    assert not admit(21.95)  # 21.05 .. 21.89 (5) are in (20.95, 21.95]
    assert q.try_acquire("AdminGetUser", now=20.0)  # other categories keep their bucket
    b = quotas.Quotas()
    b.apply(b.validate({"enabled": True, "rates": {"UserCreation": 5}}))
    assert [b.try_acquire("AdminCreateUser", now=10.0) for _ in range(6)] == [True] * 5 + [False]
    assert b.try_acquire("AdminCreateUser", now=10.21)  # refilled one token after 0.2 s

    # Through the server: configured by mode, shown in the config, counted in stats, reset.
    pool_id = new_pool("window")
    control("POST", "/_emulator/stats/reset")
    config = configure(quotas={"enabled": True, "rates": {"UserCreation": 3},
                               "modes": {"UserCreation": "sliding_window"}})
    assert config["quotas"]["modes"] == {"UserCreation": "sliding_window"}
    assert config["quotas"]["mode"] == "token_bucket"
    codes = []
    for i in range(4):  # well within one second of the first
        try:
            idp.admin_create_user(UserPoolId=pool_id, Username=f"w{i}", MessageAction="SUPPRESS")
            codes.append("ok")
        except botocore.exceptions.ClientError as error:
            codes.append(error.response["Error"]["Code"])
            assert error.response["Error"]["Message"] == "Rate exceeded"
    assert codes == ["ok", "ok", "ok", "TooManyRequestsException"], codes
    assert control("GET", "/_emulator/stats")[1]["categories"]["UserCreation"]["throttled"] == 1
    status, answer = control("POST", "/_emulator/config", {"quotas": {"mode": "leaky"}})
    assert status == 400 and "token_bucket" in answer["error"], answer
    config = configure(quotas={"enabled": False, "rates": None, "modes": None})
    assert config["quotas"]["modes"] == {} and config["quotas"]["mode"] == "token_bucket"


@check("faults: drop_after creates the user unanswered; drop_before does not; 500; throttle; delay")
def _():
    pool_id = new_pool("faults")
    configure(faults={"seed": 1, "rules": {"AdminCreateUser": {"drop_after": 1.0, "max_faults": 1}}})
    try:
        idp.admin_create_user(UserPoolId=pool_id, Username="dropped-after", MessageAction="SUPPRESS")
        raise AssertionError("the call was answered")
    except (botocore.exceptions.HTTPClientError, botocore.exceptions.ConnectionError):
        pass
    assert idp.admin_get_user(UserPoolId=pool_id, Username="dropped-after")["Username"]
    assert error_code(idp.admin_create_user, UserPoolId=pool_id, Username="dropped-after",
                      MessageAction="SUPPRESS") == "UsernameExistsException"
    configure(faults={"rules": {"AdminCreateUser": {"drop_before": 1.0, "max_faults": 1}}})
    try:
        idp.admin_create_user(UserPoolId=pool_id, Username="dropped-before", MessageAction="SUPPRESS")
        raise AssertionError("the call was answered")
    except (botocore.exceptions.HTTPClientError, botocore.exceptions.ConnectionError):
        pass
    assert error_code(idp.admin_get_user, UserPoolId=pool_id, Username="dropped-before") == \
        "UserNotFoundException"
    configure(faults={"rules": {"*": {"internal_error": 1.0, "max_faults": 1}}})
    try:
        idp.admin_get_user(UserPoolId=pool_id, Username="dropped-after")
        raise AssertionError("no error")
    except botocore.exceptions.ClientError as error:
        assert error.response["Error"]["Code"] == "InternalErrorException"
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    configure(faults={"rules": {"ListUsers": {"throttle": 1.0, "after_calls": 1}}})
    idp.list_users(UserPoolId=pool_id)
    assert error_code(idp.list_users, UserPoolId=pool_id) == "TooManyRequestsException"
    configure(faults={"rules": {"AdminGetUser": {"delay_ms": 300}}})
    started = time.time()
    idp.admin_get_user(UserPoolId=pool_id, Username="dropped-after")
    assert time.time() - started >= 0.3
    faults = configure(faults={"rules": {}})["faults"]
    assert faults["rules"] == {}
    stats = control("GET", "/_emulator/stats")[1]["operations"]
    assert stats["AdminCreateUser"]["faults"]["drop_after"] >= 1
    assert stats["AdminCreateUser"]["faults"]["drop_before"] >= 1
    assert stats["AdminGetUser"]["delayed"] >= 1


@check("control API: config validation, unknown user 404, stats shape")
def _():
    status, answer = control("POST", "/_emulator/config", {"no_such_knob": 1})
    assert status == 400 and "no_such_knob" in answer["error"]
    status, answer = control("POST", "/_emulator/config", {"quotas": {"rates": {"Nope": 1}}})
    assert status == 400
    status, config = control("GET", "/_emulator/config")
    assert status == 200 and config["presign_expiry_seconds"] == 900
    assert config["quotas"]["rates"]["UserCreation"] == 50
    assert emulator_user("us-east-1_nope", "x")[0] == 404
    stats = control("GET", "/_emulator/stats")[1]
    assert {"operations", "categories", "since"} <= set(stats)


@check("user updates: idempotent deletes, group answers, counters read and reset")
def _():
    pool_id = new_pool("updates", Schema=[{"Name": "dept", "AttributeDataType": "String",
                                           "Mutable": True}])
    idp.admin_create_user(UserPoolId=pool_id, Username="ann", MessageAction="SUPPRESS",
                          UserAttributes=[{"Name": "name", "Value": "Ann"},
                                          {"Name": "custom:dept", "Value": "ops"}])
    # Deleting an attribute the user lacks succeeds (as Cognito); one outside the schema fails.
    idp.admin_delete_user_attributes(UserPoolId=pool_id, Username="ann",
                                     UserAttributeNames=["nickname", "custom:dept"])
    names = {a["Name"] for a in idp.admin_get_user(UserPoolId=pool_id, Username="ann")["UserAttributes"]}
    assert names == {"name", "sub"}, names
    assert error_code(idp.admin_delete_user_attributes, UserPoolId=pool_id, Username="ann",
                      UserAttributeNames=["name", "custom:nope"]) == "InvalidParameterException"
    assert "name" in {a["Name"] for a in idp.admin_get_user(UserPoolId=pool_id, Username="ann")["UserAttributes"]}
    # A missing group: "Group not found."; a missing pool keeps its own message.
    try:
        idp.admin_remove_user_from_group(UserPoolId=pool_id, Username="ann", GroupName="none")
        raise AssertionError("no error")
    except idp.exceptions.ResourceNotFoundException as e:
        assert e.response["Error"]["Message"] == "Group not found.", e.response
    idp.create_group(UserPoolId=pool_id, GroupName="staff")
    idp.admin_remove_user_from_group(UserPoolId=pool_id, Username="ann", GroupName="staff")
    idp.admin_disable_user(UserPoolId=pool_id, Username="ann")
    idp.admin_disable_user(UserPoolId=pool_id, Username="ann")
    idp.admin_enable_user(UserPoolId=pool_id, Username="ann")
    assert error_code(idp.admin_delete_user, UserPoolId=pool_id, Username="ghost") == "UserNotFoundException"
    assert control("POST", "/_emulator/stats/reset")[0] == 200
    idp.admin_disable_user(UserPoolId=pool_id, Username="ann")
    stats = control("GET", "/_emulator/stats")[1]
    assert stats["operations"]["AdminDisableUser"]["calls"] == 1, stats
    assert "AdminEnableUser" not in stats["operations"], stats
    assert stats["categories"]["UserUpdate"]["max_calls_per_second"] == 1, stats


@check("reset clears pools, jobs and knobs")
def _():
    configure(presign_expiry_seconds=5)
    assert control("POST", "/_emulator/reset")[0] == 200
    assert idp.list_user_pools(MaxResults=60)["UserPools"] == []
    assert control("GET", "/_emulator/import_jobs")[1] == []
    assert control("GET", "/_emulator/config")[1]["presign_expiry_seconds"] == 900


if __name__ == "__main__":
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    sys.exit(1 if RESULTS["failed"] else 0)
