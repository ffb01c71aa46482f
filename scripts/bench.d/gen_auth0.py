#!/usr/bin/env python3
"""Deterministic generator of Auth0 user-export NDJSON for benchmarks.

    gen_auth0.py --users N [--seed S] --out FILE

One user per line, in the shape of Auth0's user export job (see samples/auth0/users.ndjson), with
the variety a real tenant has:

- ~85% database users `auth0|<24 hex>`, ~12% `google-oauth2|<21 digits>`, ~3% `github|<8 digits>`;
  identities array to match; app_metadata (roles) and user_metadata (plan, newsletter) for some.
- ~70% of all users carry `passwordHash`: a well-formed bcrypt string `$2b$<cost>$` + 22 salt and
  31 hash characters of bcrypt's alphabet (encoded from random bytes, so the trailing bits are
  zero and it parses; it does not verify anything). Cost 10 mostly, some 11/12, ~1% 13 (above
  Cognito's import cap of 12).
- email_verified true for ~90%; ~5% of emails have upper-case letters; ~0.3% are not valid email
  addresses; ~0.3% repeat an earlier user's email (social + database account of the same person).
- ~25% have a phone number (E.164; ~2% of those written nationally, which the mapping rejects).
- names with non-ASCII letters and, rarely, commas and quotes (CSV quoting).
- created_at / updated_at / last_login ISO timestamps with milliseconds; ~4% `blocked: true`.
- ~0.5% bad lines (a line cut short: invalid JSON).

Deterministic: the same --users and --seed give the same bytes (for a given Python version).
Fast enough for 5M users in well under a minute: per user it draws a few 64-bit random numbers and
fills an f-string; fragments (dates, names, domains) are precomputed.
"""

import argparse
import base64
import json
import os
import random
import sys
import time

FIRST = (
    "James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth David Barbara Richard "
    "Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy Matthew Betty "
    "Anthony Margaret Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua "
    "Michelle Kenneth Carol Kevin Amanda Brian Dorothy George Melissa Timothy Deborah Ronald "
    "Stephanie Jason Rebecca Edward Sharon Jeffrey Laura Ryan Cynthia Jacob Kathleen Gary Amy "
    "Nicholas Angela Eric Shirley Jonathan Anna Stephen Brenda Larry Pamela Justin Emma Scott "
    "Nicole Brandon Helen Benjamin Samantha Samuel Katherine Gregory Christine Alexander Debra "
    "Frank Rachel Patrick Carolyn Raymond Janet Jack Catherine Dennis Maria Jerry Heather Tyler "
    "Diane Aaron Ruth Jose Julie Adam Olivia Nathan Joyce Henry Virginia Douglas Victoria Zachary "
    "Kelly Peter Lauren Kyle Christina Ethan Joan Walter Evelyn Noah Judith Jeremy Megan Christian "
    "Andrea Keith Cheryl Roger Hannah Terry Jacqueline Gerald Martha Harold Gloria Sean Teresa "
    "Austin Ann Carl Sara Arthur Madison Lawrence Frances Dylan Kathryn Jesse Janice Jordan Jean "
    "Bryan Abigail Billy Alice Joe Judy Bruce Sophia Gabriel Grace Logan Denise Albert Amber Willie "
    "Doris Alan Marilyn Juan Danielle Wayne Beverly Elijah Isabella Randy Theresa Roy Diana Vincent "
    "Natalie Ralph Brittany Eugene Charlotte Russell Marie Bobby Kayla Mason Alexis Philip Lori"
).split() + ["José", "Zoë", "Chloé", "Søren", "Björn", "Małgorzata", "François", "Ana María",
             "Nguyễn", "Ahmad", "Aiko", "Wei", "Priya", "Oluwaseun", "Siobhán", "Jürgen"]
LAST = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips "
    "Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers "
    "Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson "
    "Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders "
    "Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler "
    "Henderson Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton "
    "Graham Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina "
    "Aguilar Stevens Murray Ford Castro Marshall Owens Harrison Fernandez McDonald Woods Washington "
    "Kennedy Wells Vargas Henry Chen Freeman Webb Tucker Guzman Burns Crawford Olson Simpson Porter"
).split() + ["Müller", "Øster", "Kowalczyk", "Dubois", "García Márquez", "Okafor", "Tanaka",
             "O'Brien", "D'Angelo", "Nakamura", "Schröder", "Ó Súilleabháin"]
DOMAINS = (
    ["gmail.com"] * 8 + ["yahoo.com"] * 3 + ["outlook.com"] * 3 + ["hotmail.com"] * 2
    + ["icloud.com", "proton.me", "aol.com", "gmx.de", "web.de", "mail.ru", "yahoo.co.uk",
       "example.com", "example.org", "acme-corp.com", "globex.io", "initech.co", "umbrella.dev"]
)
PLANS = ["free", "pro", "team", "enterprise"]
ROLES = ['["admin"]', '["admin","billing"]', '["editor"]', '["viewer"]', '["support","viewer"]']
STD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
BCR = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
TO_BCRYPT = bytes.maketrans(STD, BCR)


def js(s):
    """A JSON string literal, UTF-8 kept as is (Auth0 exports are not ASCII-escaped)."""
    return json.dumps(s, ensure_ascii=False)


def days_table():
    import datetime

    d0 = datetime.date(2015, 1, 1)
    return [(d0 + datetime.timedelta(days=i)).isoformat() for i in range(3650)]


def chunk(args):
    """Users [start, start + n) of the file, as UTF-8 bytes; chunk k has its own seeded stream."""
    seed, k, n = args
    rng = random.Random(f"{seed}:{k}")
    bits = rng.getrandbits
    randbytes = rng.randbytes
    days, first, last, hhmmss = TABLES
    ndays = len(days)
    nf, nl, nd = len(first), len(last), len(DOMAINS)
    recent_emails = [""] * 256
    buf = []
    for i in range(n):
        r = bits(64)
        r2 = bits(64)
        fi = r % nf
        r //= nf
        li = r % nl
        r //= nl
        fjs, fname, flow = first[fi]
        ljs, lname, llow = last[li]
        kind = r % 100  # 0-84 database, 85-96 google, 97-99 github
        r //= 100
        local = flow + llow + str(r % 10000)
        r //= 10000
        domain = DOMAINS[r % nd]
        r //= nd
        e = r % 1000
        r //= 1000
        if e < 3:
            email = local + "@" + domain.split(".")[0]  # no dot in the domain: invalid
        elif e < 6:
            email = local + " at " + domain  # not an address at all
        elif e < 9 and i >= 256:
            email = recent_emails[r % 256].upper() if r & 1 else recent_emails[r % 256]
        elif e < 60:
            email = (local[:1].upper() + local[1:] + "@" + domain.upper()) if e & 1 else (
                local.title() + "@" + domain)
        else:
            email = local + "@" + domain
        r //= 512
        recent_emails[i & 255] = email
        verified = "true" if (r2 % 10) else "false"
        r2 //= 10
        day_c = r2 % (ndays - 400)
        r2 //= ndays
        day_u = day_c + (r2 % 400)
        r2 //= 400
        t1 = hhmmss[r2 % 1440]
        r2 //= 1440
        t2 = hhmmss[r2 % 1440]
        r2 //= 1440
        sec = r2 % 60000
        r2 //= 60000
        created = f'{days[day_c]}T{t1}:{sec // 1000:02d}.{sec % 1000:03d}Z'
        updated = f'{days[day_u]}T{t2}:{sec % 60:02d}.{(sec * 7) % 1000:03d}Z'
        r4 = bits(32)
        logins = r4 % 300
        r4 //= 300
        name = fjs[:-1] + " " + ljs[1:]
        if r4 % 500 == 0:
            name = js(f'{lname}, {fname} "{fname[:1]}"')  # comma and quotes: CSV must quote
        if kind < 85:
            hexid = randbytes(12).hex()
            uid = "auth0|" + hexid
            ident = ('[{"connection":"Username-Password-Authentication","provider":"auth0",'
                     '"isSocial":false,"user_id":"' + hexid + '"}]')
        elif kind < 97:
            sid = str(100000000000000000000 + bits(64) % 899999999999999999999)
            uid = "google-oauth2|" + sid
            ident = ('[{"connection":"google-oauth2","provider":"google-oauth2",'
                     '"isSocial":true,"user_id":"' + sid + '"}]')
        else:
            sid = str(10000000 + bits(32) % 89999999)
            uid = "github|" + sid
            ident = ('[{"connection":"github","provider":"github",'
                     '"isSocial":true,"user_id":"' + sid + '"}]')
        pic = "https://s.gravatar.com/avatar/" + randbytes(16).hex() + "?s=480&r=pg&d=identicon"
        line = (
            f'{{"user_id":"{uid}","email":"{email}",'
            f'"email_verified":{verified},"name":{name},"given_name":{fjs},'
            f'"family_name":{ljs},"nickname":"{local}","picture":"{pic}",'
            f'"created_at":"{created}","updated_at":"{updated}","last_login":"{updated}",'
            f'"logins_count":{logins},"identities":{ident}'
        )
        r3 = bits(64)
        p = r3 % 100
        r3 //= 100
        if p < 25:
            if r3 % 50 == 0:
                phone = f"({200 + r3 % 800}) 555-{r3 % 10000:04d}"  # national: no country code
            else:
                cc = ("1", "1", "1", "44", "49", "33", "61", "81")[r3 % 8]
                phone = f"+{cc}{2000000000 + r3 % 7999999999}"
            r3 //= 10000
            pv = "true" if r3 % 3 else "false"
            line += f',"phone_number":"{phone}","phone_verified":{pv}'
        r3 //= 3
        m = r3 % 10
        r3 //= 10
        if m < 2:
            line += ',"app_metadata":{"roles":' + ROLES[r3 % 5] + '}'
        elif m < 6:
            line += (',"user_metadata":{"plan":"' + PLANS[r3 % 4] + '","newsletter":'
                     + ("true" if r3 & 8 else "false") + "}")
        r3 //= 20
        if r3 % 100 < 4:
            line += ',"blocked":true'
        r3 //= 100
        # ~82% of database users (≈ 70% of all) have a bcrypt hash.
        if kind < 85 and r3 % 100 < 82:
            r3 //= 100
            c = r3 % 100
            cost = "10" if c < 80 else "11" if c < 90 else "12" if c < 99 else "13"
            raw = randbytes(39)
            salt = base64.b64encode(raw[:16])[:22].translate(TO_BCRYPT).decode()
            digest = base64.b64encode(raw[16:])[:31].translate(TO_BCRYPT).decode()
            line += f',"passwordHash":"$2b${cost}${salt}{digest}"'
        line += "}"
        r3 //= 100
        if r3 % 200 == 0:
            line = line[: 40 + r3 % 200]  # cut short: invalid JSON
        buf.append(line)
    buf.append("")
    return "\n".join(buf).encode()


def tables():
    first = [(js(f), f, f.lower().replace(" ", "") + ".") for f in FIRST]
    last = [(js(l), l, l.lower().replace(" ", "").replace("'", "")) for l in LAST]
    hhmmss = [f"{h:02d}:{m:02d}" for h in range(24) for m in range(60)]
    return days_table(), first, last, hhmmss


TABLES = tables()
CHUNK = 25_000


def generate(n, seed, out, workers):
    """Writes n users; the bytes depend on n and seed only, not on the number of workers."""
    jobs = [(seed, k, min(CHUNK, n - k * CHUNK)) for k in range((n + CHUNK - 1) // CHUNK)]
    if workers <= 1 or len(jobs) < 2:
        for j in jobs:
            out.write(chunk(j))
        return
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for data in pool.imap(chunk, jobs, chunksize=1):
            out.write(data)




def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", required=True)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                    help="processes (output does not depend on it; default min(2, cores))")
    a = ap.parse_args()
    t = time.perf_counter()
    tmp = a.out + ".part"
    with open(tmp, "wb", buffering=1 << 20) as f:
        generate(a.users, a.seed, f, a.workers)

    os.replace(tmp, a.out)
    print(f"generated {a.users} users in {time.perf_counter() - t:.1f} s -> {a.out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
