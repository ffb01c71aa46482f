#!/usr/bin/env python3
r"""Python baseline for the `plan` benchmark: what `cognito-migrate plan --format auth0` does, written
the way a careful Python programmer would with the standard library's `json` and `csv` modules.

    baseline_plan.py --input users.ndjson --pool-schema pool.json --out DIR [--json]

Same work as the Rust `plan` with its defaults (`--mode import-job --unimportable trigger`) on an
Auth0 user export (NDJSON), so that the ratio of the two times means something:

1. read: one JSON object per line (blank lines skipped); a line that is not valid JSON (or not an
   object) is a `malformed_record` rejection, a record without `user_id` `missing_required`;
2. flatten: `passwordHash` is taken out, `identities` reduced to `identities.0.*` and the joined
   connections/providers, `blocked: true` disables the user, every other member is flattened
   (`user_metadata.plan`, arrays of scalars joined with `,`);
3. map: the built-in Auth0 mapping (`src/source/builtin_mappings/auth0.toml`, read with tomllib):
   trim, lower-case email, booleans, E.164 check, epoch seconds from ISO timestamps, legacy id;
   then the pool's constraints (booleans, numbers, string lengths), email shape, E.164, verified
   flags, the username rule (1-128 characters, no white space);
4. duplicates: by username and by email (the pool has email as an alias; case-insensitive), the
   first record wins;
5. route: a bcrypt hash (parsed: version, cost, bcrypt-base64 salt and digest) that Cognito can
   import (not `$2x$`, cost <= 12) for a user with a verified email goes to `import:BCRYPT`; a
   hash that cannot be imported goes to the migration trigger (`trigger`); no hash and a verified
   email goes to `import:none`; no hash and no verified email is rejected (`not_verifiable`);
6. write: the import CSVs in the pool's column order (+ `password_hash` for BCRYPT), in Cognito's
   format (unquoted, commas escaped `\,`), split at 500,000 rows or 100 MB per file, mode 0600,
   flushed and fsynced like the Rust writer; every rejection to rejects.csv; a summary (table, or
   JSON with --json) with the same keys as Rust's.

Only bcrypt hashes are parsed (the generated input has no other kind); any other hash is
rejected as `invalid_password_hash` — the Rust tool knows a dozen schemes. Timestamps are parsed
with `datetime.fromisoformat`, which accepts a few forms the Rust parser does not (and the other way
round); the generated input uses the common `2024-11-02T17:04:11.201Z` form only.
"""

import argparse
import csv
import datetime
import json
import math
import os
import re
import sys

MAX_ROWS = 500_000
MAX_BYTES = 100 * 1000 * 1000

# Cognito's standard attributes; all strings (at most 2048 characters) except these.
STANDARD_NAMES = frozenset(
    "name given_name family_name middle_name nickname preferred_username profile picture website "
    "email email_verified gender birthdate zoneinfo locale phone_number phone_number_verified "
    "address updated_at".split())
STANDARD = {
    "email_verified": "boolean",
    "phone_number_verified": "boolean",
    "updated_at": "number",
}

BOOLS = {
    "true": "true", "t": "true", "yes": "true", "y": "true", "1": "true", "on": "true",
    "false": "false", "f": "false", "no": "false", "n": "false", "0": "false", "off": "false",
}

# White space or control characters (Rust's char::is_whitespace / is_control).
BAD_CHAR = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
BCRYPT_B64 = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
BCRYPT_INDEX = {c: i for i, c in enumerate(BCRYPT_B64)}
BCRYPT_CHARS = frozenset(BCRYPT_B64)
UTC = datetime.timezone.utc
fromisoformat = datetime.datetime.fromisoformat


class Reject(Exception):
    def __init__(self, field, reason, message):
        self.field, self.reason, self.message = field, reason, message


def load_mapping(repo):
    """(target, source field, transform) in the Rust mapper's order (BTreeMap: sorted by target)."""
    path = os.path.join(repo, "src/source/builtin_mappings/auth0.toml")
    try:
        import tomllib

        with open(path, "rb") as f:
            m = tomllib.load(f)
    except (ImportError, OSError):
        m = {"username": "user_id", "attributes": {
            "email": {"from": "email", "transform": "lowercase_email"},
            "email_verified": {"from": "email_verified", "transform": "bool"},
            "phone_number": {"from": "phone_number", "transform": "e164"},
            "phone_number_verified": {"from": "phone_verified", "transform": "bool"},
            "given_name": {"from": "given_name", "transform": "trim"},
            "family_name": {"from": "family_name", "transform": "trim"},
            "name": {"from": "name", "transform": "trim"},
            "nickname": "nickname", "picture": "picture", "preferred_username": "username",
            "updated_at": {"from": "updated_at", "transform": "epoch_seconds"},
            "custom:legacy_id": "user_id"}}
    rules = []
    for target in sorted(m["attributes"]):
        rule = m["attributes"][target]
        if isinstance(rule, str):
            rules.append((target, rule, "trim"))
        else:
            rules.append((target, rule["from"], rule.get("transform", "trim")))
    username = m.get("username", "username")
    return rules, username


def parse_bool(v):
    return BOOLS.get(v.lower())


def is_e164(v):
    return 8 <= len(v) <= 16 and v[0] == "+" and "1" <= v[1] <= "9" and v.isascii() and v[2:].isdigit()


def to_e164(v):
    if is_e164(v):
        return v
    plus = v.startswith("+")
    rest = v[1:] if plus else v
    digits = []
    for c in rest:
        if "0" <= c <= "9":
            digits.append(c)
        elif c not in " -.()/\xa0":
            return None
    d = "".join(digits)
    if plus:
        n = "+" + d
    elif d.startswith("00"):
        n = "+" + d[2:]
    else:
        return None  # a national number, and the mapping has no default_region
    return n if is_e164(n) else None


def epoch_seconds(v):
    if v.isascii() and v.isdigit():
        n = int(v)
        return n // 1000 if len(v) >= 12 else n
    try:
        dt = fromisoformat(v)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return math.floor(dt.timestamp())


def nbytes(s):
    return len(s) if s.isascii() else len(s.encode())


def is_email(v):
    local, at, domain = v.rpartition("@")
    if not at or not local or "@" in local or nbytes(local) > 64 or nbytes(domain) < 3:
        return False
    if "." not in domain or domain[0] == "." or domain[-1] == "." or ".." in domain:
        return False
    if BAD_CHAR.search(v):
        return False
    rest = domain.replace("-", "").replace(".", "")
    return not rest or rest.isalnum()


def bcrypt_cost(h):
    """The cost of a well-formed bcrypt string, whether it is `$2x$`; or raises Reject."""
    def bad(why):
        return Reject("password", "invalid_password_hash",
                      f"the password hash cannot be read: malformed bcrypt hash: {why}")
    if len(h) != 60 or not h.isascii():
        raise bad("expected 60 characters")
    if h[:4] not in ("$2a$", "$2b$", "$2x$", "$2y$"):
        raise bad("unknown version prefix")
    c = h[4:6]
    if h[6] != "$" or not c.isdigit():
        raise bad("bad cost")
    cost = int(c)
    if not 4 <= cost <= 31:
        raise bad("cost outside 4..=31")
    body = h[7:]
    if not BCRYPT_CHARS.issuperset(body):
        raise bad("bad salt or hash characters")
    # bcrypt base64 of 16 + 23 bytes: the unused low bits of the last character are zero.
    if BCRYPT_INDEX[body[21]] & 15 or BCRYPT_INDEX[body[52]] & 3:
        raise bad("bad salt or hash encoding")
    return cost, h[2] == "x"


def flatten(obj, prefix, out):
    for k, v in obj.items():
        key = prefix + "." + k if prefix else k
        flatten_value(key, v, out)


def flatten_value(key, v, out):
    t = type(v)
    if t is str:
        out[key] = v
    elif t is bool:
        out[key] = "true" if v else "false"
    elif v is None:
        pass
    elif t is dict:
        flatten(v, key, out)
    elif t is list:
        if all(type(x) not in (dict, list) for x in v):
            joined = ",".join(scalar_text(x) for x in v if x is not None)
            if joined:
                out[key] = joined
        else:
            for i, x in enumerate(v):
                flatten_value(f"{key}.{i}", x, out)
    else:
        out[key] = str(v)


def scalar_text(v):
    if type(v) is bool:
        return "true" if v else "false"
    if type(v) in (dict, list) or v is None:
        return None
    return v if type(v) is str else str(v)


def auth0_user(obj):
    """(flat fields, enabled, password) of one Auth0 export object, or raises Reject."""
    fields = {}
    password = None
    ph = obj.pop("passwordHash", None)
    if ph is not None:
        if type(ph) is not str:
            raise Reject("passwordHash", "malformed_record", "bad_value: expected a string")
        password = ph or None
    custom = obj.pop("custom_password_hash", None)
    if custom is not None:
        alg = custom.get("algorithm") if type(custom) is dict else None
        value = (custom.get("hash") or {}).get("value") if type(custom) is dict else None
        if alg in ("bcrypt", "argon2", "pbkdf2", "ldap") and type(value) is str:
            if password is None and value:
                password = value
        elif alg is not None:
            fields["custom_password_hash.algorithm"] = str(alg)
        else:
            raise Reject("custom_password_hash", "malformed_record",
                         "bad_value: `custom_password_hash` has no `algorithm`")
    identities = obj.pop("identities", None)
    if type(identities) is list:
        conns, provs = [], []
        for i, ident in enumerate(identities):
            if type(ident) is not dict:
                continue
            c = scalar_text(ident.get("connection"))
            if c is not None:
                conns.append(c)
            p = scalar_text(ident.get("provider"))
            if p is not None:
                provs.append(p)
            if i == 0:
                for key in ("connection", "provider", "user_id", "isSocial"):
                    s = scalar_text(ident.get(key))
                    if s is not None:
                        fields["identities.0." + key] = s
        if conns:
            fields["identities.connections"] = ",".join(conns)
        if provs:
            fields["identities.providers"] = ",".join(provs)
    identifiers = obj.pop("identifiers", None)
    enabled = obj.get("blocked") is not True
    flatten(obj, "", fields)
    if type(identifiers) is list:
        for ident in identifiers:
            if type(ident) is not dict:
                continue
            kind = ident.get("type")
            value = scalar_text(ident.get("value"))
            verified = scalar_text(ident.get("verified"))
            if kind == "email":
                f, vf = "email", "email_verified"
            elif kind == "phone_number":
                f, vf = "phone_number", "phone_verified"
            elif kind == "username":
                f, vf = "username", None
            else:
                continue
            if value is not None and f not in fields:
                fields[f] = value
                if vf and verified is not None:
                    fields.setdefault(vf, verified)
    if "user_id" not in fields:
        alt = fields.get("alt_id") or fields.get("_id.$oid") or fields.get("_id")
        if alt is None:
            raise Reject("user_id", "missing_required", "missing_field: `user_id` is missing")
        fields["user_id"] = "auth0|" + alt
    return fields, enabled, password


class Plan:
    def __init__(self, schema, rules, username_field, out_dir):
        self.out_dir = out_dir
        self.header = schema["csv_header"]
        limits = {a["name"]: a for a in schema.get("attributes", [])}
        self.targets = []
        for target, source, transform in rules:
            if target not in STANDARD_NAMES and target not in limits:
                continue  # the pool has no such attribute: the built-in mapping leaves it out
            kind = STANDARD.get(target, "string")
            max_len = limits.get(target, {}).get("max_length", 2048)
            self.targets.append((target, source, transform, kind, max_len))
        self.username_field = username_field
        self.case_sensitive = schema.get("username_case_sensitive", False)
        aliases = schema.get("alias_attributes", []) + schema.get("username_attributes", [])
        self.unique_email = "email" in aliases
        self.auto_verified = [a + "_verified" for a in schema.get("auto_verified_attributes", [])]
        self.usernames = {}
        self.emails = {}
        booleans = ("cognito:mfa_enabled", "email_verified", "phone_number_verified")
        self.columns = [(c, "false" if c in booleans else "") for c in self.header]
        self.username_col = self.header.index("cognito:username")

    def map(self, fields):
        attrs = {}
        for target, source, transform, kind, max_len in self.targets:
            v = fields.get(source)
            if not v:
                continue
            v = v.strip()
            if not v:
                continue
            if transform == "trim":
                pass
            elif transform == "lowercase_email" or transform == "lowercase":
                v = v.lower()
            elif transform == "bool":
                b = parse_bool(v)
                if b is None:
                    raise Reject(source, "invalid_boolean", f"{target}: {v!r} is not a boolean")
                v = b
            elif transform == "e164":
                v = to_e164(v)
                if v is None:
                    raise Reject(source, "invalid_phone",
                                 f"{target}: not a phone number that can be written in E.164")
            elif transform == "epoch_seconds":
                s = epoch_seconds(v)
                if s is None:
                    raise Reject(source, "invalid_date", f"{target}: {v!r} is not a timestamp")
                v = str(s)
            else:
                raise SystemExit(f"transform {transform} is not in the baseline")
            if kind == "boolean":
                b = parse_bool(v)
                if b is None:
                    raise Reject(source, "invalid_boolean", f"{target}: {v!r} is not a boolean")
                v = b
            elif kind == "number":
                try:
                    int(v)
                except ValueError:
                    raise Reject(source, "invalid_number", f"{target}: {v!r} is not a whole number")
            elif len(v) > max_len:
                raise Reject(source, "too_long",
                             f"{target}: {len(v)} characters, the pool allows at most {max_len}")
            if "\n" in v or "\r" in v:
                raise Reject(source, "malformed_record",
                             f"{target}: line breaks cannot be carried in Cognito's import file")
            if target == "email" and not is_email(v):
                raise Reject(source, "invalid_email", "email: not a valid email address")
            if target == "phone_number" and not is_e164(v):
                raise Reject(source, "invalid_phone", "phone_number: not in E.164")
            attrs[target] = v
        for flag, attr in (("email_verified", "email"), ("phone_number_verified", "phone_number")):
            if attrs.get(flag) == "true" and attr not in attrs:
                raise Reject(flag, "missing_required", f"{flag} is true but {attr} is empty")
        uf = self.username_field
        username = (fields.get(uf) or "").strip()
        if not username:
            raise Reject(uf, "missing_required", "the username is empty")
        if len(username) > 128 or BAD_CHAR.search(username):
            raise Reject(uf, "invalid_username",
                         "a username must be 1 to 128 characters without white space")
        return attrs, username

    def dedupe(self, attrs, username, record):
        ukey = username if self.case_sensitive else username.lower()
        first = self.usernames.get(ukey)
        if first is not None:
            raise Reject("username", "duplicate_username",
                         f"the same username as record {first}, which is kept")
        ekey = None
        if self.unique_email:
            e = attrs.get("email")
            if e is not None:
                ekey = e.lower()
                first = self.emails.get(ekey)
                if first is not None:
                    raise Reject("email", "duplicate_email",
                                 f"the same email as record {first}, which is kept")
        self.usernames[ukey] = record
        if ekey is not None:
            self.emails[ekey] = record

    def route(self, attrs, password):
        """(route, import hash or None), or raises Reject."""
        verified = not self.auto_verified or any(attrs.get(a) == "true" for a in self.auto_verified)
        if password is None:
            if verified:
                return "import:none", None
            raise Reject("email_verified", "not_verifiable",
                         "Cognito's import job needs one of " + ", ".join(self.auto_verified)
                         + " verified for this pool; use --mode auto to create such users with AdminCreateUser")
        if not password.startswith("$2"):
            raise Reject("password", "invalid_password_hash",
                         "the password hash cannot be read: the baseline reads bcrypt only")
        h = password.strip()
        cost, buggy = bcrypt_cost(h)
        if verified and not buggy and cost <= 12:
            return "import:BCRYPT", h
        return "trigger", None  # --unimportable trigger: the Lambda trigger keeps the password


class ChunkSet:
    """The import files of one route, rolled over at 500,000 rows or 100 MB."""

    def __init__(self, out_dir, stem, header):
        self.out_dir, self.stem = out_dir, stem
        self.header_line = ",".join(header) + "\n"
        self.header_bytes = nbytes(self.header_line)
        self.files = []
        self.f = None
        self.pending = []
        # Cognito's import format as src/plan/chunks.rs writes it: never quoted, a comma inside a
        # value escaped as `\,`. (The csv module also escapes a backslash as `\\`, which the Rust
        # writer does not; the generated input has no backslashes, so the files still match.)
        self.writer = csv.writer(self, quoting=csv.QUOTE_NONE, escapechar="\\", quotechar=None,
                                 lineterminator="\n")

    def write(self, s):  # the csv writer hands each encoded row here
        self.pending.append(s)

    def add(self, row):
        self.writer.writerow(row)
        s = self.pending.pop()
        n = nbytes(s)
        cur = self.files[-1] if self.files else None
        if cur is None or cur["rows"] >= MAX_ROWS or cur["bytes"] + n > MAX_BYTES:
            self.roll()
            cur = self.files[-1]
        self.f.write(s)
        cur["rows"] += 1
        cur["bytes"] += n

    def roll(self):
        self.close()
        path = os.path.join(self.out_dir, f"{self.stem}-{len(self.files) + 1:04d}.csv")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.f = open(fd, "w", encoding="utf-8", newline="", buffering=1 << 20)
        self.f.write(self.header_line)
        self.files.append({"path": path, "route": None, "index": len(self.files) + 1,
                           "rows": 0, "bytes": self.header_bytes})

    def close(self):
        if self.f is not None:
            self.f.flush()
            os.fsync(self.f.fileno())
            self.f.close()
            self.f = None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input", required=True)
    ap.add_argument("--pool-schema", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    with open(a.pool_schema) as f:
        schema = json.load(f)
    rules, username_field = load_mapping(repo)
    plan = Plan(schema, rules, username_field, a.out)
    os.makedirs(a.out, exist_ok=True)
    rejects_path = os.path.join(a.out, "rejects.csv")
    rfd = os.open(rejects_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    rejects_file = open(rfd, "w", encoding="utf-8", newline="", buffering=1 << 20)
    rejects = csv.writer(rejects_file, lineterminator="\n")
    rejects.writerow(["record", "line", "byte_offset", "field", "reason", "message"])
    sets = {
        "import:BCRYPT": ChunkSet(a.out, "import-bcrypt", plan.header + ["password_hash"]),
        "import:none": ChunkSet(a.out, "import-nohash", plan.header),
    }
    routes, reasons = {}, {}
    records = routed = rejected = 0
    columns, ucol = plan.columns, plan.username_col
    loads = json.loads
    line_no, offset = 0, 0
    with open(a.input, "rb", buffering=1 << 20) as f:
        for raw in f:
            line_no += 1
            start = offset
            offset += len(raw)
            if raw[:1] in b" \t\r\n":
                stripped = raw.lstrip()
                if not stripped:
                    continue
                start += len(raw) - len(stripped)
            records += 1
            try:
                try:
                    obj = loads(raw.decode())
                except ValueError as e:  # includes invalid UTF-8 (UnicodeDecodeError)
                    raise Reject("record", "malformed_record", f"invalid_json: {e}")
                if type(obj) is not dict:
                    raise Reject("record", "malformed_record", "malformed_record: expected a JSON object")
                fields, enabled, password = auth0_user(obj)
                attrs, username = plan.map(fields)
                plan.dedupe(attrs, username, records)
                route, import_hash = plan.route(attrs, password)
            except Reject as r:
                rejected += 1
                reasons[r.reason] = reasons.get(r.reason, 0) + 1
                rejects.writerow([records, line_no, start, r.field, r.reason, r.message])
                continue
            routed += 1
            routes[route] = routes.get(route, 0) + 1
            s = sets.get(route)
            if s is not None:
                row = [attrs.get(c, d) for c, d in columns]
                row[ucol] = username
                if import_hash is not None:
                    row.append(import_hash)
                s.add(row)
    files = []
    for route in ("import:none", "import:BCRYPT"):  # the Rust tool's route order
        s = sets[route]
        s.close()
        for fi in s.files:
            fi["route"] = route
            files.append(fi)
    rejects_file.flush()
    os.fsync(rejects_file.fileno())
    rejects_file.close()
    summary = {
        "records": records, "routed": routed, "rejected": rejected,
        "routes": dict(sorted(routes.items())), "rejections": dict(sorted(reasons.items())),
        "files": files, "rejects_file": rejects_path,
    }
    if a.json:
        json.dump(summary, sys.stdout, indent=2)
        print()
    else:
        print(f"records read      {records:>10}")
        print(f"to migrate        {routed:>10}")
        for r, n in summary["routes"].items():
            print(f"  {r:<16}{n:>10}")
        print(f"rejected          {rejected:>10}")
        for r, n in summary["rejections"].items():
            print(f"  {r:<24}{n:>10}")
        for fi in files:
            print(f"wrote {fi['path']} ({fi['rows']} users, {fi['bytes']} bytes)")
    return 1 if rejected else 0


if __name__ == "__main__":
    sys.exit(main())
