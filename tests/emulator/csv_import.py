"""The user-import CSV file as Cognito documents it: the header ``GetCSVHeader`` returns, the file
rules that fail a whole job, and the per-row rules that fail one user.

Why this module exists: the CSV format is the contract between cognito-migrate and Cognito's import
job. Keeping its rules in pure functions (no moto state, no threads) makes them easy to read against
AWS's "Creating the user import CSV file" page and to change when Cognito turns out to differ.

Header (``GetCSVHeader``): the 19 standard attributes in Cognito's documented order, then the
pool's ``custom:`` attributes in schema order (developer-only attributes are left out), then
``cognito:mfa_enabled`` and ``cognito:username``. It never contains ``password_hash``: a file for a
job created with a ``PasswordHashingAlgorithm`` has exactly one more column, ``password_hash``
(anywhere; columns are matched by name). That is this project's decision until AWS's page
"Importing users with password hashes" is confirmed.

File rules (the job ends ``Failed`` with a ``CompletionMessage``): UTF-8 without a byte order mark;
at most 100 MB and 500,000 users; every header column present, none unknown or repeated;
``password_hash`` present exactly when the job has an algorithm.

Record format (the documented one, not RFC 4180): fields are separated by commas and are *not*
quoted; a comma inside a value is written ``\\,``; a quote is an ordinary character; leading and
trailing white space of a value is trimmed; a row is at most 16,000 characters. Lines end with LF
or CRLF. So a PHC hash such as ``$argon2id$v=19$m=19456\\,t=2\\,p=1$...`` needs its commas escaped.
The knob ``csv_quoting: "rfc4180"`` switches to standard quoting instead (``"a,b"``, ``""`` for a
quote), for as long as it is unknown whether Cognito also accepts that.

Row rules (the row is ``[FAILED]``, the job goes on): as many values as header columns;
``cognito:username`` non-empty, at most 128 characters, no spaces or tabs; ``cognito:mfa_enabled``
``true``/``false`` (any case) matching the pool's MFA setting (ON: true, OFF: false); booleans
``email_verified``/``phone_number_verified`` empty or true/false; ``email`` required when
``email_verified`` is true and must contain one ``@``; ``phone_number`` required when
``phone_number_verified`` is true and must be E.164; ``birthdate`` mm/dd/yyyy (the documented CSV
form; the OIDC form yyyy-mm-dd is accepted too); ``updated_at`` epoch seconds; attribute lengths and
custom attribute constraints from the pool's schema; the pool's required attributes present; when
the pool has auto-verified attributes, at least one of them verified (Cognito's message:
``The User Record does not set any of the auto verified attributes to true. (Example:
email_verified to true).``); ``password_hash`` empty or valid for the job's algorithm
(:func:`hashes.parse_import_hash`; only the configured notation when ``import_hash_notations``
names one for that algorithm).

User pools with ``UsernameAttributes`` (email and/or phone number as username): ``cognito:username``
must be an email address or phone number ("Username should be either an email or a phone number.",
as AdminCreateUser answers); the user gets that value as its email/phone attribute (a different
non-empty value in that column fails the row) and, as moto and Cognito do for such pools, a
generated UUID as its internal username.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass

from hashes import ImportedHash, InvalidHash, parse_import_hash

STANDARD_COLUMNS = [
    "name", "given_name", "family_name", "middle_name", "nickname", "preferred_username",
    "profile", "picture", "website", "email", "email_verified", "gender", "birthdate",
    "zoneinfo", "locale", "phone_number", "phone_number_verified", "address", "updated_at",
]
MFA_COLUMN = "cognito:mfa_enabled"
USERNAME_COLUMN = "cognito:username"
HASH_COLUMN = "password_hash"
BOOLEAN_COLUMNS = ("email_verified", "phone_number_verified")

MAX_FILE_BYTES = 100 * 1024 * 1024
MAX_USERS = 500_000
MAX_ROW_CHARS = 16_000
MAX_USERNAME_CHARS = 128
MAX_STRING_CHARS = 2048

AUTO_VERIFIED_FAILURE = (
    "The User Record does not set any of the auto verified attributes to true. "
    "(Example: email_verified to true)."
)

_UNESCAPED_COMMA = re.compile(r"(?<!\\),")
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_BIRTHDATE = re.compile(r"^(\d{2}/\d{2}/\d{4}|\d{4}-\d{2}-\d{2})$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def csv_header(pool) -> list[str]:
    """The columns GetCSVHeader answers for a moto user pool."""
    custom = [
        name
        for name, attribute in pool.schema_attributes.items()
        if attribute.custom and not attribute.developer_only
    ]
    return STANDARD_COLUMNS + custom + [MFA_COLUMN, USERNAME_COLUMN]


def split_record(line: str, quoting: str = "documented") -> list[str]:
    """Splits one line into trimmed values.

    ``documented`` (Cognito's documented format): ``\\,`` is a comma inside a value, quotes are
    ordinary characters. ``rfc4180`` (the ``csv_quoting`` knob): a value may be quoted, quotes
    doubled inside, backslashes are ordinary characters. Both are line-based: a line break inside
    a value is not supported."""
    if quoting == "rfc4180":
        values = next(csv.reader([line])) if '"' in line else line.split(",")
        return [value.strip() for value in values]
    if "\\" not in line:
        return [value.strip() for value in line.split(",")]
    return [value.replace("\\,", ",").strip() for value in _UNESCAPED_COMMA.split(line)]


class FileRejected(Exception):
    """The whole file is unusable; ``str(error)`` is the job's CompletionMessage (<= 128 chars)."""


@dataclass
class ParsedFile:
    columns: list[str]
    lines: list[str]  # data lines; line number of lines[i] is i + 2 (the header is line 1)


def read_file(
    data: bytes,
    expected_columns: list[str],
    algorithm: str | None,
    quoting: str = "documented",
    max_users: int = MAX_USERS,
    max_bytes: int = MAX_FILE_BYTES,
) -> ParsedFile:
    """Checks the file-level rules; ``max_users``/``max_bytes`` are Cognito's limits unless a test
    lowers them (the ``max_file_users``/``max_file_bytes`` knobs)."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise FileRejected("The CSV file starts with a byte order mark; use UTF-8 without BOM.")
    if len(data) > max_bytes:
        limit = "100 MB" if max_bytes == MAX_FILE_BYTES else f"{max_bytes} bytes"
        raise FileRejected(f"The CSV file is larger than the maximum of {limit}.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise FileRejected("The CSV file is not valid UTF-8.") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    if not lines or not lines[0].strip():
        raise FileRejected("The CSV file has no header row.")
    columns = split_record(lines[0], quoting)
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise FileRejected(_short(f"The CSV header repeats column(s): {', '.join(repeated)}."))
    allowed = set(expected_columns) | ({HASH_COLUMN} if algorithm else set())
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        raise FileRejected(_short(f"The CSV header has unknown column(s): {', '.join(unknown)}."))
    missing = [c for c in expected_columns if c not in columns]
    if algorithm and HASH_COLUMN not in columns:
        missing.append(HASH_COLUMN)
    if missing:
        raise FileRejected(_short(f"The CSV header lacks column(s): {', '.join(missing)}."))
    if len(lines) - 1 > max_users:
        raise FileRejected(
            f"The CSV file has {len(lines) - 1} users; the maximum is {max_users} per file."
        )
    return ParsedFile(columns, lines[1:])


def _short(message: str) -> str:
    return message if len(message) <= 128 else message[:124] + "...."


@dataclass
class ValidRow:
    username: str | None  # None: the pool names users by UUID (UsernameAttributes)
    key: tuple  # what "already exists" is decided on
    attributes: dict[str, str]
    mfa_enabled: bool
    imported_hash: ImportedHash | None


class RowChecker:
    """Checks data lines against one pool's schema and settings (captured at construction)."""

    def __init__(
        self,
        pool,
        columns: list[str],
        algorithm: str | None,
        require_auto_verified: bool,
        quoting: str = "documented",
        notation: str | None = None,
    ):
        config = pool.extended_config
        self.algorithm = algorithm
        # The only password_hash notation accepted (None: every notation hashes.py knows).
        self.notation = notation
        self.quoting = quoting
        self.ncols = len(columns)
        self.index = {name: i for i, name in enumerate(columns)}
        self.attribute_columns = [
            (i, name)
            for i, name in enumerate(columns)
            if name not in (USERNAME_COLUMN, MFA_COLUMN, HASH_COLUMN)
        ]
        self.mfa = (pool.mfa_config or "OFF").upper()
        self.auto_verified = [
            a for a in (config.get("AutoVerifiedAttributes") or []) if a in ("email", "phone_number")
        ] if require_auto_verified else []
        self.required = [
            name
            for name, attribute in pool.schema_attributes.items()
            if attribute.required and not attribute.custom and name in STANDARD_COLUMNS
        ]
        self.username_attributes = list(config.get("UsernameAttributes") or [])
        self.case_insensitive = (config.get("UsernameConfiguration") or {}).get(
            "CaseSensitive"
        ) is False
        self.custom = {
            name: attribute
            for name, attribute in pool.schema_attributes.items()
            if attribute.custom and name in self.index
        }

    def normalise(self, value: str) -> str:
        return value.lower() if self.case_insensitive else value

    def check(self, line: str) -> ValidRow | str:
        """A ValidRow, or the reason (a str) the row fails."""
        if len(line) > MAX_ROW_CHARS:
            return f"The row is longer than {MAX_ROW_CHARS} characters."
        values = split_record(line, self.quoting)
        if len(values) != self.ncols:
            return (
                f"The row has {len(values)} values but the header has {self.ncols} columns "
                "(commas inside values must be written \\,)."
            )
        get = lambda name: values[self.index[name]]  # noqa: E731

        username = get(USERNAME_COLUMN)
        if not username:
            return "The cognito:username value is missing."
        if " " in username or "\t" in username:
            return "The cognito:username value must not contain spaces or tabs."
        if len(username) > MAX_USERNAME_CHARS:
            return f"The cognito:username value is longer than {MAX_USERNAME_CHARS} characters."

        mfa = get(MFA_COLUMN).lower()
        if not mfa:
            return "The cognito:mfa_enabled value is missing."
        if mfa not in ("true", "false"):
            return "The cognito:mfa_enabled value must be true or false."
        if self.mfa == "ON" and mfa != "true":
            return "cognito:mfa_enabled must be true: the user pool requires MFA."
        if self.mfa == "OFF" and mfa != "false":
            return "cognito:mfa_enabled must be false: MFA is off in the user pool."

        fields: dict[str, str] = {}
        for i, name in self.attribute_columns:
            value = values[i]
            if value:
                fields[name] = value
        for name in BOOLEAN_COLUMNS:
            if name in fields:
                lowered = fields[name].lower()
                if lowered not in ("true", "false"):
                    return f"The {name} value must be true or false."
                fields[name] = lowered

        username_key: tuple = ("username", self.normalise(username))
        internal_username: str | None = username
        if self.username_attributes:
            alias = None
            if "email" in self.username_attributes and _EMAIL.match(username):
                alias = "email"
            elif "phone_number" in self.username_attributes and _E164.match(username):
                alias = "phone_number"
            if alias is None:
                return "Username should be either an email or a phone number."
            if alias in fields and fields[alias] != username:
                return f"cognito:username must equal {alias}: the user pool uses {alias} as username."
            fields[alias] = username
            username_key = (alias, self.normalise(username))
            internal_username = None

        if fields.get("email_verified") == "true" and "email" not in fields:
            return "The email value is required when email_verified is true."
        if fields.get("phone_number_verified") == "true" and "phone_number" not in fields:
            return "The phone_number value is required when phone_number_verified is true."
        if "email" in fields and not _EMAIL.match(fields["email"]):
            return "The email value is not a valid email address."
        if "phone_number" in fields and not _E164.match(fields["phone_number"]):
            return "The phone_number value is not in E.164 format (+ and up to 15 digits)."
        if "birthdate" in fields and not _BIRTHDATE.match(fields["birthdate"]):
            return "The birthdate value must be in the format mm/dd/yyyy."
        if "updated_at" in fields and not fields["updated_at"].isdigit():
            return "The updated_at value must be a number of seconds since the epoch."
        for name, value in fields.items():
            reason = self._check_length_and_type(name, value)
            if reason:
                return reason
        for name in self.required:
            if name not in fields:
                return f"The required attribute {name} has no value."
        if self.auto_verified and not any(
            fields.get(f"{attribute}_verified") == "true" for attribute in self.auto_verified
        ):
            return AUTO_VERIFIED_FAILURE

        imported_hash = None
        if self.algorithm:
            encoded = get(HASH_COLUMN)
            if encoded:
                try:
                    imported_hash = parse_import_hash(self.algorithm, encoded, self.notation)
                except InvalidHash as error:
                    return f"The password_hash value is not a valid {self.algorithm} hash: {error}."

        return ValidRow(internal_username, username_key, fields, mfa == "true", imported_hash)

    def _check_length_and_type(self, name: str, value: str) -> str | None:
        attribute = self.custom.get(name)
        if attribute is None:
            if len(value) > MAX_STRING_CHARS:
                return f"The {name} value is longer than {MAX_STRING_CHARS} characters."
            return None
        if attribute.data_type == "Number":
            if not _NUMBER.match(value):
                return f"The {name} value must be a number."
            limits = attribute.number_constraints or {}
            number = float(value)
            if limits.get("MinValue") not in (None, "") and number < float(limits["MinValue"]):
                return f"The {name} value is below its minimum of {limits['MinValue']}."
            if limits.get("MaxValue") not in (None, "") and number > float(limits["MaxValue"]):
                return f"The {name} value is above its maximum of {limits['MaxValue']}."
            return None
        if attribute.data_type == "Boolean":
            if value.lower() not in ("true", "false"):
                return f"The {name} value must be true or false."
            return None
        limits = attribute.string_constraints or {}
        maximum = int(limits.get("MaxLength") or MAX_STRING_CHARS)
        minimum = int(limits.get("MinLength") or 0)
        if len(value) > maximum:
            return f"The {name} value is longer than {maximum} characters."
        if len(value) < minimum:
            return f"The {name} value is shorter than {minimum} characters."
        return None
