#!/usr/bin/env python3
"""Writes the sample exports in samples/ and the password table in samples/README.md.

Every password hash is a real hash of the password listed in README.md, made with the reference
implementation of its scheme (or, for Firebase's modified scrypt and Keycloak's credentials, with
the documented algorithm on top of the standard library), so the password module can be tested
end to end against them. Salts come from a seeded generator: running the script again rewrites
identical files.

Usage (a throwaway venv; nothing here is a dependency of the project):

    python3 -m venv /tmp/svenv
    /tmp/svenv/bin/pip install bcrypt passlib django argon2-cffi cryptography
    /tmp/svenv/bin/python samples/generate.py

How each hash is made:
- bcrypt (Auth0, generic formats): `bcrypt.hashpw(pw, salt)` with cost 10 and a seeded 16-byte
  salt; `$2y$` (PHP) hashes are the same computation with the PHP prefix.
- sha512-crypt: `passlib.hash.sha512_crypt` with 5000 rounds (the default, left implicit).
- phpass: `passlib.hash.phpass` with 2^13 rounds (`$P$B`, as WordPress writes).
- argon2id (PHC string): `argon2.low_level.hash_secret` with m=19456 KiB, t=2, p=1 (within
  Cognito's import limits).
- Firebase: the modified scrypt of firebase's scrypt tool: key = scrypt(password,
  salt + salt_separator, N=2^mem_cost, r=rounds, p=1, dkLen=64); hash = AES-256-CTR(key[:32],
  IV = 16 zero bytes).encrypt(signer_key); rounds 8, mem_cost 14, separator "Bw==", a seeded
  64-byte signer key (hash_config.json).
- Keycloak pbkdf2-sha256: PBKDF2-HMAC-SHA256, 27500 iterations, 16-byte salt, 64-byte key
  (Keycloak < 24 defaults); Keycloak argon2: raw argon2id, 32-byte hash, m=7168 KiB, t=5, p=1
  (Keycloak's defaults), both stored as Keycloak's secretData/credentialData JSON strings.
- Django: `django.contrib.auth.hashers.make_password` with hasher instances of modest cost:
  PBKDF2 (sha256, 20000 iterations), BCryptSHA256 (cost 10), Argon2 (argon2id m=19456 t=2 p=1);
  one unusable password (`make_password(None)`: "!" + 40 random characters).
"""

import base64
import hashlib
import json
import os
import random
import string

import argon2.low_level
import bcrypt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from passlib.hash import phpass, sha512_crypt

import django
from django.conf import settings

settings.configure(PASSWORD_HASHERS=["django.contrib.auth.hashers.PBKDF2PasswordHasher"])
django.setup()
from django.contrib.auth import hashers as dj  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RNG = random.Random(20261122)

PASSWORDS = {
    "alice": "Blue-Kettle-42",
    "bob": "hunter2-but-longer",
    "carol": "Sesame-0pen!",
    "dave": "Tr0ub4dor&3",
    "erin": "correct horse battery staple",
    "frank": "Fr4nk-Ops-2023",
    "grace": "Gr@ce-Hopper-1906",
    "heidi": "Mot-de-passe-2024",
    "ivan": "ivan-the-terrible",
    "judy": "Judy#Secure9",
    "kim": "K1m-Park!",
}

TABLE = []  # (format, file, user, password, scheme)


def note(fmt, file, user, scheme):
    TABLE.append((fmt, file, user, PASSWORDS[user], scheme))


def rand_bytes(n):
    return bytes(RNG.getrandbits(8) for _ in range(n))


def rand_alnum(n):
    return "".join(RNG.choice(string.ascii_letters + string.digits) for _ in range(n))


# ----------------------------------------------------------------------------------------------
# Hash functions


BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def bcrypt_b64(data):
    out = []
    i = 0
    while i < len(data):
        c1 = data[i]
        i += 1
        out.append(BCRYPT_ALPHABET[c1 >> 2])
        c1 = (c1 & 0x03) << 4
        if i >= len(data):
            out.append(BCRYPT_ALPHABET[c1])
            break
        c2 = data[i]
        i += 1
        c1 |= c2 >> 4
        out.append(BCRYPT_ALPHABET[c1])
        c1 = (c2 & 0x0F) << 2
        if i >= len(data):
            out.append(BCRYPT_ALPHABET[c1])
            break
        c2 = data[i]
        i += 1
        c1 |= c2 >> 6
        out.append(BCRYPT_ALPHABET[c1])
        out.append(BCRYPT_ALPHABET[c2 & 0x3F])
    return "".join(out)


def bcrypt_salt(cost=10, prefix="2b"):
    return f"${prefix}${cost:02d}${bcrypt_b64(rand_bytes(16))[:22]}"


def bcrypt_hash(pw, cost=10, prefix="2b"):
    h = bcrypt.hashpw(pw.encode(), bcrypt_salt(cost).encode()).decode()
    assert bcrypt.checkpw(pw.encode(), h.encode())
    if prefix != "2b":
        h = f"${prefix}$" + h[4:]
    return h


def sha512crypt_hash(pw):
    salt = rand_alnum(16)
    h = sha512_crypt.using(salt=salt, rounds=5000).hash(pw)
    assert sha512_crypt.verify(pw, h)
    return h


def phpass_hash(pw):
    salt = "".join(RNG.choice(BCRYPT_ALPHABET) for _ in range(8))
    h = phpass.using(salt=salt, rounds=13).hash(pw)
    assert phpass.verify(pw, h) and h.startswith("$P$B")
    return h


def argon2id_phc(pw, m=19456, t=2, p=1):
    h = argon2.low_level.hash_secret(
        pw.encode(), rand_bytes(16), time_cost=t, memory_cost=m, parallelism=p,
        hash_len=32, type=argon2.low_level.Type.ID,
    ).decode()
    assert argon2.PasswordHasher().verify(h, pw)
    return h


FIREBASE = {
    "algorithm": "SCRYPT",
    "base64_signer_key": base64.b64encode(rand_bytes(64)).decode(),
    "base64_salt_separator": "Bw==",
    "rounds": 8,
    "mem_cost": 14,
}


def firebase_scrypt(pw, salt):
    signer = base64.b64decode(FIREBASE["base64_signer_key"])
    sep = base64.b64decode(FIREBASE["base64_salt_separator"])
    key = hashlib.scrypt(pw.encode(), salt=salt + sep, n=2 ** FIREBASE["mem_cost"],
                         r=FIREBASE["rounds"], p=1, dklen=64, maxmem=64 * 1024 * 1024)
    enc = Cipher(algorithms.AES(key[:32]), modes.CTR(b"\0" * 16)).encryptor()
    return base64.b64encode(enc.update(signer) + enc.finalize()).decode()


def firebase_password(pw):
    salt = rand_bytes(12)
    return firebase_scrypt(pw, salt), base64.b64encode(salt).decode()


def keycloak_pbkdf2(pw, iterations=27500):
    salt = rand_bytes(16)
    value = hashlib.pbkdf2_hmac("sha256", pw.encode(), salt, iterations, dklen=64)
    secret = {"value": base64.b64encode(value).decode(), "salt": base64.b64encode(salt).decode(),
              "additionalParameters": {}}
    cred = {"hashIterations": iterations, "algorithm": "pbkdf2-sha256", "additionalParameters": {}}
    return json.dumps(secret, separators=(",", ":")), json.dumps(cred, separators=(",", ":"))


def keycloak_argon2(pw, m=7168, t=5, p=1, length=32):
    salt = rand_bytes(16)
    raw = argon2.low_level.hash_secret_raw(pw.encode(), salt, time_cost=t, memory_cost=m,
                                           parallelism=p, hash_len=length,
                                           type=argon2.low_level.Type.ID)
    secret = {"value": base64.b64encode(raw).decode(), "salt": base64.b64encode(salt).decode(),
              "additionalParameters": {}}
    cred = {"hashIterations": t, "algorithm": "argon2", "additionalParameters": {
        "hashLength": [str(length)], "memory": [str(m)], "type": ["id"], "version": ["1.3"],
        "parallelism": [str(p)]}}
    return json.dumps(secret, separators=(",", ":")), json.dumps(cred, separators=(",", ":"))


class Pbkdf2(dj.PBKDF2PasswordHasher):
    iterations = 20000


class BcryptSha256(dj.BCryptSHA256PasswordHasher):
    rounds = 10


class Argon2(dj.Argon2PasswordHasher):
    time_cost = 2
    memory_cost = 19456
    parallelism = 1


def django_password(pw, kind):
    if kind == "pbkdf2_sha256":
        h = dj.make_password(pw, salt=rand_alnum(22), hasher=Pbkdf2())
        assert Pbkdf2().verify(pw, h)
    elif kind == "bcrypt_sha256":
        # make_password() would pass the salt through as is; bcrypt wants bytes.
        h = BcryptSha256().encode(pw, bcrypt_salt(10).encode())
        assert BcryptSha256().verify(pw, h)
    elif kind == "argon2":
        h = dj.make_password(pw, salt=rand_alnum(22), hasher=Argon2())
        assert Argon2().verify(pw, h)
    else:
        raise ValueError(kind)
    return h


def django_unusable():
    # What make_password(None) returns, from the seeded generator.
    return "!" + rand_alnum(40)


def write(rel, text, newline="\n"):
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text.replace("\n", newline) if newline != "\n" else text)


# ----------------------------------------------------------------------------------------------
# Auth0: user export job lines (NDJSON) with the bcrypt `passwordHash` of the password-hash export.


def auth0():
    rel = "auth0/users.ndjson"
    db = {"connection": "Username-Password-Authentication", "provider": "auth0", "isSocial": False}

    def user(uid, email, name, extra=None, password=None, identity=None):
        given, _, family = name.partition(" ")
        u = {
            "user_id": f"auth0|{uid}" if identity is None else f"{identity['provider']}|{uid}",
            "email": email,
            "email_verified": True,
            "name": name,
            "given_name": given,
            "family_name": family,
            "nickname": email.split("@")[0] if email else given.lower(),
            "picture": f"https://s.gravatar.com/avatar/{hashlib.md5((email or name).encode()).hexdigest()}?s=480&r=pg&d=identicon",
            "created_at": "2023-03-14T09:26:53.589Z",
            "updated_at": "2024-11-02T17:04:11.201Z",
            "last_login": "2024-11-02T17:04:11.198Z",
            "logins_count": 12,
            "identities": [dict(identity or db, user_id=uid)],
        }
        if email is None:
            del u["email"], u["email_verified"]
        if extra:
            u.update(extra)
        if password:
            u["passwordHash"] = bcrypt_hash(PASSWORDS[password])
            note("auth0", rel, password, "bcrypt $2b$ cost 10 (passwordHash)")
        return json.dumps(u, ensure_ascii=False, separators=(",", ":"))

    google = {"connection": "google-oauth2", "provider": "google-oauth2", "isSocial": True}
    email_conn = {"connection": "email", "provider": "email", "isSocial": False}
    lines = [
        user("64f1a2b3c4d5e6f708192a01", "alice.nguyen@example.com", "Alice Nguyen",
             {"app_metadata": {"roles": ["admin", "billing"]}}, password="alice"),
        user("64f1a2b3c4d5e6f708192a02", "bob.martin@example.org", "Bob Martin",
             {"phone_number": "+14155550123", "phone_verified": True,
              "user_metadata": {"plan": "pro", "newsletter": False}}, password="bob"),
        user("104857392018475619283", "carol.smith@gmail.com", "Carol Smith", identity=google),
        user("64f1a2b3c4d5e6f708192a04", "dave.okafor@example.com", "Dave Okafor",
             {"blocked": True}, password="dave"),
        # Bad 1: a line cut short (malformed JSON) -> invalid_json at line 5.
        '{"user_id":"auth0|64f1a2b3c4d5e6f708192a05","email":"erin.walsh@example.com","email_verified":true,"name":"Erin Wal',
        # Bad 2: no email (the reader keeps it; the mapping rejects it).
        user("64f1a2b3c4d5e6f708192a06", None, "Frank Ops", {"username": "frank_ops"},
             password="frank"),
        # Bad 3: a phone number that is no E.164 number (rejected by the mapping's e164).
        user("64f1a2b3c4d5e6f708192a07", "grace.h@example.com", "Grace Hopper",
             {"phone_number": "555-CALL-NOW"}, password="grace"),
        user("64f1a2b3c4d5e6f708192a08", "heloise.dubois@example.fr", "Héloïse Dubois",
             {"user_metadata": {"plan": "free", "locale": "fr-FR"}}, password="heidi"),
        user("64f1a2b3c4d5e6f708192a09", "ivan.petrov@example.com", "Ivan Petrov",
             {"username": "ivanp"}, password="ivan"),
        user("64f1a2b3c4d5e6f708192a0a", "judy.chen@example.com", "Judy Chen",
             {"logins_count": 57, "app_metadata": {"roles": ["support"]}}, password="judy"),
        user("64f1a2b3c4d5e6f708192a0b", "Kim.Park@Example.COM", "Kim Park", password="kim"),
        user("64f1a2b3c4d5e6f708192a0c", "leo.rossi@example.it", "Leo Rossi", identity=email_conn),
    ]
    write(rel, "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------------------
# Firebase: auth:export JSON and CSV of the same project.


def firebase():
    users = []

    def add(name, uid, email, display, password=None, **extra):
        u = {"localId": uid}
        if email:
            u["email"] = email
            u["emailVerified"] = extra.pop("emailVerified", True)
        if password:
            h, s = firebase_password(PASSWORDS[password])
            u["passwordHash"], u["salt"] = h, s
        if display:
            u["displayName"] = display
        u["lastSignedInAt"] = extra.pop("lastSignedInAt", "1730563451198")
        u["createdAt"] = extra.pop("createdAt", "1678786013589")
        u.update(extra)
        users.append((name, u, password))

    add("alice", "Xq3kLm9PzR2vT8wY1aBc4dEf5gH6", "alice.nguyen@example.com", "Alice Nguyen",
        password="alice")
    add("bob", "Bt7nQw2ErT5yU8iO1pAs4dF6gH9j", "bob.martin@example.org", "Bob Martin",
        password="bob", phoneNumber="+14155550123",
        customAttributes='{"role":"admin","tenant":"acme"}')
    add("carol", "Cz1xV4bN7mQ0wE3rT6yU9iO2pA5s", "carol.smith@gmail.com", "Carol Smith",
        photoUrl="https://lh3.googleusercontent.com/a/ACg8ocK-carol=s96-c",
        providerUserInfo=[{"providerId": "google.com", "rawId": "104857392018475619283",
                           "email": "carol.smith@gmail.com", "displayName": "Carol Smith",
                           "photoUrl": "https://lh3.googleusercontent.com/a/ACg8ocK-carol=s96-c"}])
    add("dave", "Dk8jH5gF2dS9aP6oI3uY0tR7eW4q", "dave.okafor@example.com", "Dave Okafor",
        password="dave", disabled=True)
    # Bad 1: no localId (a hand-edited export) -> missing_field.
    add("erin", "", "erin.walsh@example.com", "Erin Walsh", password="erin")
    users[-1][1].pop("localId")
    # Bad 2: phone-only user without email (the mapping rejects it if email is required).
    add("frank", "Fp4oI7uY0tR3eW6qA9sD2fG5hJ8k", None, None, phoneNumber="+447700900123")
    # Bad 3: a phone number that is not E.164.
    add("grace", "Gh2jK5lZ8xC1vB4nM7qW0eR3tY6u", "grace.h@example.com", "Grace Hopper",
        password="grace", phoneNumber="12345")
    add("heidi", "Hd9fG6hJ3kL0zX7cV4bN1mQ8wE5r", "heloise.dubois@example.fr", "Héloïse Dubois",
        password="heidi")
    add("ivan", "Iv5bN2mQ9wE6rT3yU0iO7pA4sD1f", "ivan.petrov@example.com", "Ivan Petrov",
        password="ivan",
        providerUserInfo=[{"providerId": "github.com", "rawId": "9876543",
                           "email": "ivan.petrov@example.com", "displayName": "ivanp"}])
    add("judy", "Jc3vB6nM9qW2eR5tY8uI1oP4aS7d", "judy.chen@example.com", "Judy Chen",
        password="judy", emailVerified=False,
        customAttributes='{"tier":"gold","flags":{"beta":true}}')

    rel_json = "firebase/users.json"
    # As firebase-tools writes it: '{"users": [' EOL, users JSON.stringify(u, null, 2) joined by
    # ',' EOL, then ']}'.
    parts = [json.dumps(u, indent=2, ensure_ascii=False) for _, u, _ in users]
    write(rel_json, '{"users": [\n' + ",\n".join(parts) + "]}")
    for name, _, pw in users:
        if pw:
            note("firebase", rel_json, name, "Firebase modified scrypt (hash_config.json)")

    # CSV: the same users by position, no header, each line ending in a comma. New salts (a
    # separate export would hold the same hashes; fresh ones make the two files independent).
    rel_csv = "firebase/users.csv"
    providers = {"google.com": 7, "facebook.com": 11, "twitter.com": 15, "github.com": 19}

    def esc(s):
        return f'"{s}"' if "," in s else s

    rows = []
    for name, u, pw in users:
        arr = [""] * 28
        arr[0] = u.get("localId", "")
        arr[1] = u.get("email", "")
        arr[2] = "true" if u.get("emailVerified") else "false"
        if pw:
            arr[3], arr[4] = firebase_password(PASSWORDS[pw])
            note("firebase", rel_csv, name, "Firebase modified scrypt (hash_config.json)")
        arr[5] = esc(u.get("displayName", ""))
        arr[6] = u.get("photoUrl", "")
        for info in u.get("providerUserInfo", []):
            i = providers[info["providerId"]]
            arr[i:i + 4] = [info["rawId"], info.get("email", ""),
                            esc(info.get("displayName", "")), info.get("photoUrl", "")]
        arr[23] = u["createdAt"]
        arr[24] = u["lastSignedInAt"]
        arr[25] = u.get("phoneNumber", "")
        arr[26] = "true" if u.get("disabled") else ""
        ca = u.get("customAttributes")
        arr[27] = '"' + ca.replace('"', '""') + '"' if ca else ""
        rows.append(",".join(arr) + ",")
    # Bad 3 of the CSV: a row someone appended columns to -> malformed_record.
    rows[8] = rows[8] + "imported-2024,manual"
    write(rel_csv, "\n".join(rows) + "\n")

    write("firebase/hash_config.json", json.dumps(FIREBASE, indent=2) + "\n")


# ----------------------------------------------------------------------------------------------
# Keycloak: a realm export with users (kc.sh export --realm acme --users same_file).


def keycloak():
    rel = "keycloak/realm-export.json"
    users = []

    def user(name, uid, username, email, first, last, cred=None, **extra):
        u = {"id": uid, "username": username, "firstName": first, "lastName": last,
             "email": email, "emailVerified": True, "createdTimestamp": 1678786013589,
             "enabled": True, "totp": False}
        if email is None:
            del u["email"]
            u["emailVerified"] = False
        creds = []
        if cred == "pbkdf2":
            s, c = keycloak_pbkdf2(PASSWORDS[name])
            note("keycloak", rel, name, "Keycloak pbkdf2-sha256, 27500 iterations")
        elif cred == "argon2":
            s, c = keycloak_argon2(PASSWORDS[name])
            note("keycloak", rel, name, "Keycloak argon2 (argon2id m=7168 t=5 p=1)")
        if cred:
            creds.append({"id": f"{uid[:8]}-cred-0000-0000-000000000001", "type": "password",
                          "userLabel": "My password", "createdDate": 1678786013712,
                          "secretData": s, "credentialData": c})
        u["credentials"] = creds
        u["disableableCredentialTypes"] = []
        u["requiredActions"] = []
        u["realmRoles"] = ["default-roles-acme"]
        u["notBefore"] = 0
        u["groups"] = []
        u.update(extra)
        users.append(u)
        return u

    user("alice", "0b6f2a51-3c1d-4e8f-9a2b-1c3d5e7f9a01", "alice", "alice.nguyen@example.com",
         "Alice", "Nguyen", "pbkdf2", groups=["/staff"])
    user("bob", "0b6f2a51-3c1d-4e8f-9a2b-1c3d5e7f9a02", "bob", "bob.martin@example.org",
         "Bob", "Martin", "argon2", groups=["/staff/admins"],
         attributes={"phoneNumber": ["+14155550123"], "department": ["Engineering"]},
         realmRoles=["default-roles-acme", "admin"], clientRoles={"account": ["manage-account"]})
    user("carol", "0b6f2a51-3c1d-4e8f-9a2b-1c3d5e7f9a03", "carol", "carol.smith@gmail.com",
         "Carol", "Smith", federatedIdentities=[{"identityProvider": "google",
                                                 "userId": "104857392018475619283",
                                                 "userName": "carol.smith@gmail.com"}])
    user("dave", "0b6f2a51-3c1d-4e8f-9a2b-1c3d5e7f9a04", "dave", "dave.okafor@example.com",
         "Dave", "Okafor", "pbkdf2", enabled=False)
    # Not a person: skipped by the reader (warning), though it keeps its place in the numbering.
    sa = {"id": "0b6f2a51-3c1d-4e8f-9a2b-1c3d5e7f9a05", "username": "service-account-backend",
          "emailVerified": False, "createdTimestamp": 1678786013589, "enabled": True,
          "totp": False, "serviceAccountClientId": "backend", "credentials": [],
          "disableableCredentialTypes": [], "requiredActions": [],
          "realmRoles": ["default-roles-acme"], "notBefore": 0, "groups": []}
    users.append(sa)
    # Bad 1: no email (the mapping rejects it if email is required).
    user("frank", "0b6f2a51-3c1d-4e8f-9a2b-1c3d5e7f9a06", "frank", None, "Frank", "Ops",
         "pbkdf2")
    # Bad 2: a phone attribute that is no phone number.
    user("grace", "0b6f2a51-3c1d-4e8f-9a2b-1c3d5e7f9a07", "grace", "grace.h@example.com",
         "Grace", "Hopper", "pbkdf2", attributes={"phoneNumber": ["call me maybe"]})
    heidi = user("heidi", "0b6f2a51-3c1d-4e8f-9a2b-1c3d5e7f9a08", "heidi",
                 "heloise.dubois@example.fr", "Héloïse", "Dubois", "pbkdf2", totp=True,
                 groups=["/staff", "/sales/emea"])
    heidi["credentials"].append({
        "id": "0b6f2a51-cred-0000-0000-000000000002", "type": "otp", "userLabel": "Phone",
        "createdDate": 1678786014000,
        "secretData": json.dumps({"value": rand_alnum(20)}, separators=(",", ":")),
        "credentialData": '{"subType":"totp","digits":6,"counter":0,"period":30,"algorithm":"HmacSHA1"}'})
    # Bad 3: a password credential whose secretData was lost -> bad_value (field credentials).
    ivan = user("ivan", "0b6f2a51-3c1d-4e8f-9a2b-1c3d5e7f9a09", "ivan", "ivan.petrov@example.com",
                "Ivan", "Petrov", "pbkdf2")
    del ivan["credentials"][0]["secretData"]
    TABLE.pop()  # ivan's hash is not in the file.
    user("judy", "0b6f2a51-3c1d-4e8f-9a2b-1c3d5e7f9a0a", "judy", "judy.chen@example.com",
         "Judy", "Chen", "argon2", requiredActions=["UPDATE_PASSWORD"])

    realm = {
        "id": "acme",
        "realm": "acme",
        "displayName": "ACME Corp",
        "notBefore": 0,
        "enabled": True,
        "sslRequired": "external",
        "registrationAllowed": False,
        "passwordPolicy": "length(8) and hashIterations(27500)",
        "roles": {"realm": [{"id": "5b1f", "name": "admin", "description": "Administrators",
                             "composite": False, "clientRole": False, "containerId": "acme"}],
                  "client": {"backend": []}},
        "groups": [{"id": "9c1e", "name": "staff", "path": "/staff", "subGroups": [
            {"id": "9c1f", "name": "admins", "path": "/staff/admins", "subGroups": []}]},
                   {"id": "9c20", "name": "sales", "path": "/sales", "subGroups": [
                       {"id": "9c21", "name": "emea", "path": "/sales/emea", "subGroups": []}]}],
        "clients": [{"id": "7d3a", "clientId": "backend", "enabled": True,
                     "serviceAccountsEnabled": True,
                     "description": "not users: {\"users\": [\"nobody\"]} ]",
                     "redirectUris": ["https://app.example.com/*"]}],
        "users": users,
        "smtpServer": {},
        "eventsEnabled": False,
    }
    # Keycloak's Jackson pretty printer writes `"key" : value`.
    write(rel, json.dumps(realm, indent=2, ensure_ascii=False, separators=(",", " : ")) + "\n")


# ----------------------------------------------------------------------------------------------
# Django: dumpdata auth.user --indent 2, and a psql CSV of auth_user.


def django_samples():
    rel = "django/auth_user.json"
    entries = []

    def entry(pk, name, username, email, first, last, kind, **extra):
        pw = django_unusable() if kind == "unusable" else django_password(PASSWORDS[name], kind)
        if kind != "unusable":
            note("django", rel, name, f"Django {kind}")
        fields = {"password": pw, "last_login": "2024-11-02T17:04:11.198Z",
                  "is_superuser": False, "username": username, "first_name": first,
                  "last_name": last, "email": email, "is_staff": False, "is_active": True,
                  "date_joined": "2023-03-14T09:26:53.589Z", "groups": [],
                  "user_permissions": []}
        fields.update(extra)
        entries.append({"model": "auth.user", "pk": pk, "fields": fields})

    entry(1, "alice", "alice", "alice.nguyen@example.com", "Alice", "Nguyen", "pbkdf2_sha256",
          is_superuser=True, is_staff=True, groups=[1])
    entry(2, "bob", "bob", "bob.martin@example.org", "Bob", "Martin", "bcrypt_sha256", groups=[2])
    entry(3, "carol", "carol", "carol.smith@example.com", "Carol", "Smith", "argon2")
    entry(4, "dave", "dave", "dave.okafor@example.com", "Dave", "Okafor", "unusable",
          last_login=None)
    entry(5, "erin", "erin", "erin.walsh@example.com", "Erin", "Walsh", "pbkdf2_sha256",
          is_active=False)
    # Bad 1: empty email (Django allows it; the mapping rejects it if email is required).
    entry(6, "frank", "frank", "", "Frank", "Ops", "pbkdf2_sha256")
    entry(7, "grace", "grace", "grace.h@example.com", "Grace", "Hopper", "pbkdf2_sha256",
          groups=[1, 2])
    # Bad 2: the same username as pk 1 (from a merged dump) -> a duplicate for the run to reject.
    entry(8, "kim", "alice", "kim.park@example.com", "Kim", "Park", "pbkdf2_sha256")
    TABLE[-1] = TABLE[-1][:2] + ("kim (username alice, pk 8)",) + TABLE[-1][3:]
    # Bad 3: an entry whose fields were lost -> malformed_record.
    entries.append({"model": "auth.user", "pk": 9})
    entry(10, "heidi", "heidi", "heloise.dubois@example.fr", "Héloïse", "Dubois",
          "pbkdf2_sha256")

    # Django's serializer: '[' , objects indented by 2 from column 0, joined by ',\n', ']'.
    body = ",\n".join(json.dumps(e, indent=2, ensure_ascii=False) for e in entries)
    write(rel, "[\n" + body + "\n]\n")

    # psql: \copy auth_user TO 'auth_user.csv' WITH (FORMAT csv, HEADER)
    rel_csv = "django/auth_user.csv"
    cols = ["id", "password", "last_login", "is_superuser", "username", "first_name",
            "last_name", "email", "is_staff", "is_active", "date_joined"]
    rows = [",".join(cols)]

    def row(pk, name, username, email, first, last, kind, active="t", last_login=None,
            superuser="f", staff="f"):
        pw = django_unusable() if kind == "unusable" else django_password(PASSWORDS[name], kind)
        if kind != "unusable":
            note("django", rel_csv, name, f"Django {kind}")
        cells = [str(pk), pw, last_login or "", superuser, username, first, last, email, staff,
                 active, "2023-03-14 09:26:53.589+00"]
        rows.append(",".join(f'"{c}"' if ("," in c or '"' in c) else c for c in cells))

    row(1, "alice", "alice", "alice.nguyen@example.com", "Alice", "Nguyen", "pbkdf2_sha256",
        last_login="2024-11-02 17:04:11.198+00", superuser="t", staff="t")
    row(2, "bob", "bob", "bob.martin@example.org", "Bob", "Martin", "bcrypt_sha256")
    row(3, "carol", "carol", "carol.smith@example.com", "Carol", "Smith", "argon2")
    row(4, "dave", "dave", "dave.okafor@example.com", "Dave", "Okafor", "unusable")
    row(5, "erin", "erin", "erin.walsh@example.com", "Erin", "Walsh", "pbkdf2_sha256",
        active="f")
    # Bad 1: empty email.
    row(6, "frank", "frank", "", "Frank", "Ops", "pbkdf2_sha256")
    # Bad 2: a row cut short (ragged) -> malformed_record at line 8.
    rows.append("7,pbkdf2_sha256$20000$truncated")
    row(8, "grace", "grace", "grace.h@example.com", "Grace", "O'Hara, Hopper", "pbkdf2_sha256")
    # Bad 3: the same username as id 1.
    row(9, "kim", "alice", "kim.park@example.com", "Kim", "Park", "pbkdf2_sha256")
    TABLE[-1] = TABLE[-1][:2] + ("kim (username alice, id 9)",) + TABLE[-1][3:]
    row(10, "heidi", "heidi", "heloise.dubois@example.fr", "Héloïse", "Dubois", "pbkdf2_sha256")
    write(rel_csv, "\n".join(rows) + "\n")


# ----------------------------------------------------------------------------------------------
# Generic formats.


def generic_csv():
    rel = "csv/users.csv"
    header = ["id", "username", "email", "first_name", "last_name", "phone", "password_hash",
              "roles", "active", "created_at", "notes"]
    rows = [",".join(header)]

    def q(c):
        return '"' + c.replace('"', '""') + '"' if any(x in c for x in ',"\n') else c

    def row(i, name, email, first, last, phone, scheme, roles, active="1", notes=""):
        if scheme == "bcrypt":
            h = bcrypt_hash(PASSWORDS[name], prefix="2y")
            label = "bcrypt $2y$ cost 10 (PHP)"
        elif scheme == "sha512":
            h = sha512crypt_hash(PASSWORDS[name])
            label = "sha512-crypt $6$ (5000 rounds)"
        elif scheme == "argon2":
            h = argon2id_phc(PASSWORDS[name])
            label = "argon2id PHC (m=19456, t=2, p=1)"
        elif scheme == "phpass":
            h = phpass_hash(PASSWORDS[name])
            label = "phpass $P$B (WordPress)"
        else:
            h, label = "", None
        if label:
            note("csv", rel, name, label)
        cells = [str(i), name, email, first, last, phone, h, roles, active,
                 "2023-03-14 09:26:53", notes]
        rows.append(",".join(q(c) for c in cells))

    row(1, "alice", "alice.nguyen@example.com", "Alice", "Nguyen", "+1 415 555 0101", "bcrypt",
        "admin,staff")
    row(2, "bob", "bob.martin@example.org", "Bob", "Martin", "(415) 555-0123", "sha512", "staff")
    row(3, "carol", "carol.smith@example.com", "Carol", "Smith", "", "argon2", "")
    row(4, "dave", "dave.okafor@example.com", "Dave", "Okafor", "", "phpass", "", active="0")
    row(5, "erin", "erin.walsh@example.com", "Erin", "Walsh", "+353 1 555 0199", "bcrypt", "",
        notes="Prefers phone contact.\nVIP since 2019")
    # Bad 1: no email.
    row(6, "frank", "", "Frank", "Ops", "", "sha512", "ops")
    # Bad 2: not a phone number.
    row(7, "grace", "grace.h@example.com", "Grace", "Hopper", "call me maybe", "argon2", "")
    # Bad 3: a row cut short (ragged) -> malformed_record at line 10.
    rows.append("8,henry,henry@example.com,Henry")
    row(9, "heidi", "heloise.dubois@example.fr", "Héloïse", "Dubois", "+33 1 55 55 01 23",
        "phpass", "sales", notes='Paris, France; says "bonjour"')
    row(10, "ivan", "ivan.petrov@example.com", "Ivan", "Petrov", "", "", "")
    row(11, "judy", "judy.chen@example.com", "Judy", "Chen", "+14155550199", "bcrypt", "support")
    row(12, "kim", "Kim.Park@Example.COM", "Kim", "Park", "", "sha512", "")
    # Written with CRLF, as spreadsheet programs do (the quoted newline in erin's notes stays LF).
    text = "\r\n".join(rows) + "\r\n"
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def generic_json_and_ndjson():
    rel = "json/users.json"
    items = []

    def person(i, name, email, first, last, extra=None, pw=True, fmt="json"):
        u = {"id": i, "username": name, "contact": {"email": email},
             "profile": {"first_name": first, "last_name": last}, "active": True}
        if email is None:
            del u["contact"]["email"]
        if pw:
            u["password_hash"] = bcrypt_hash(PASSWORDS[name])
            note(fmt, f"{fmt}/users.{fmt}", name, "bcrypt $2b$ cost 10")
        if extra:
            u.update(extra)
        return u

    items.append(json.dumps(person(1, "alice", "alice.nguyen@example.com", "Alice", "Nguyen",
                                   {"roles": ["admin", "staff"], "score": 1.50}), indent=2))
    items.append(json.dumps(person(2, "bob", "bob.martin@example.org", "Bob", "Martin",
                                   {"contact": {"email": "bob.martin@example.org",
                                                "phone": "+14155550123"},
                                    "notes": "likes [brackets], {braces} and \"quotes\" \\o/"}),
                            indent=2))
    # \u escapes for the accented letters (ensure_ascii), and a nested object two levels deep.
    items.append(json.dumps(person(3, "heidi", "heloise.dubois@example.fr", "Héloïse", "Dubois",
                                   {"address": {"city": "Paris", "geo": {"lat": 48.8566,
                                                                         "lon": 2.3522}}}),
                            indent=2))
    items.append(json.dumps(person(4, "dave", "dave.okafor@example.com", "Dave", "Okafor",
                                   {"active": False, "legacy_id": 98765432109876543210987}),
                            indent=2))
    # Bad 1: a record with a trailing comma -> invalid_json (the array goes on).
    items.append('{\n  "id": 5,\n  "username": "erin",\n  "contact": {"email": "erin.walsh@example.com"},\n}')
    # Bad 2: no email.
    items.append(json.dumps(person(6, "frank", None, "Frank", "Ops"), indent=2))
    items.append(json.dumps(person(7, "grace", "grace.h@example.com", "Grace", "Hopper",
                                   {"tags": ["early-adopter", None, "beta"], "manager": None}),
                            indent=2))
    items.append(json.dumps(person(8, "ivan", "ivan.petrov@example.com", "Ivan", "Petrov",
                                   pw=False), indent=2))
    items.append(json.dumps(person(9, "judy", "judy.chen@example.com", "Judy", "Chen",
                                   {"emoji": "\U0001F600"}), indent=2))
    items.append(json.dumps(person(10, "kim", "Kim.Park@Example.COM", "Kim", "Park"), indent=2))
    write(rel, "[\n" + ",\n".join(items) + "\n]\n")

    rel = "ndjson/users.ndjson"
    lines = []

    def line(u):
        lines.append(json.dumps(u, ensure_ascii=False, separators=(",", ":")))

    line(person(1, "alice", "alice.nguyen@example.com", "Alice", "Nguyen",
                {"roles": ["admin"]}, fmt="ndjson"))
    line(person(2, "bob", "bob.martin@example.org", "Bob", "Martin",
                {"contact": {"email": "bob.martin@example.org", "phone": "+14155550123"}},
                fmt="ndjson"))
    line(person(3, "carol", "carol.smith@example.com", "Carol", "Smith", fmt="ndjson"))
    # Bad 1: not JSON (a log line that slipped in) -> invalid_json at line 4.
    lines.append("2024-11-02T17:04:11Z WARN export: retrying batch 7")
    line(person(5, "erin", "erin.walsh@example.com", "Erin", "Walsh", fmt="ndjson"))
    lines.append("")  # a blank line, skipped
    # Bad 2: no email.
    line(person(6, "frank", None, "Frank", "Ops", fmt="ndjson"))
    # Bad 3: not a phone number.
    line(person(7, "grace", "grace.h@example.com", "Grace", "Hopper",
                {"contact": {"email": "grace.h@example.com", "phone": "12345"}}, fmt="ndjson"))
    line(person(8, "heidi", "heloise.dubois@example.fr", "Héloïse", "Dubois", fmt="ndjson"))
    line(person(9, "ivan", "ivan.petrov@example.com", "Ivan", "Petrov", fmt="ndjson"))
    line(person(10, "judy", "judy.chen@example.com", "Judy", "Chen", fmt="ndjson"))
    write(rel, "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------------------


def readme_table():
    out = ["| format | file | user | password | hash scheme |", "|---|---|---|---|---|"]
    for fmt, file, user, pw, scheme in TABLE:
        out.append(f"| {fmt} | `{file}` | {user} | `{pw}` | {scheme} |")
    return "\n".join(out)


def main():
    auth0()
    firebase()
    keycloak()
    django_samples()
    generic_csv()
    generic_json_and_ndjson()
    path = os.path.join(HERE, "README.md")
    with open(path, encoding="utf-8") as f:
        readme = f.read()
    start, end = "<!-- passwords:start -->", "<!-- passwords:end -->"
    a, b = readme.index(start) + len(start), readme.index(end)
    readme = readme[:a] + "\n" + readme_table() + "\n" + readme[b:]
    with open(path, "w", encoding="utf-8") as f:
        f.write(readme)


if __name__ == "__main__":
    main()
