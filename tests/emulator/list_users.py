"""``ListUsers`` with a ``sub`` filter (``sub ^= "ab"``, ``sub = "…"``) in O(log n + page) per
call.

Why this module exists: a full reconcile lists a whole pool under the UserList quota (30 RPS, 60
users a page), in parallel over ``sub`` prefixes. moto answers a filtered ListUsers by scanning
every user of the pool (and its page tokens by scanning again), so on a pool of 50,000 users each
page costs tens of milliseconds of the emulator's one Python thread and the emulator, not the
client under test, would set the pace. Here the users of a pool are kept sorted by ``sub`` (rebuilt
only after users were added or removed, see ``signin.IndexedUsers.version``) and a prefix is a
bisected range.

Answers as Cognito documents them: users whose ``sub`` starts with (equals) the value, at most
``Limit`` (1-60, default 60) a page, and a ``PaginationToken`` while more remain. The order is
by ``sub`` (Cognito promises none). A token names the last ``sub`` returned, so users added or
deleted between pages never make a page repeat or skip a user that stayed. Other filters and
unfiltered listing are answered as before (``signin._patch_list_users``, moto).
"""

from __future__ import annotations

import base64
import bisect
import re

from shared import list_users_limit

_FILTER = re.compile(r'^\s*sub\s*(\^=|=)\s*"([^"]*)"\s*$')
_TOKEN_PREFIX = "emusub:"


class _SortedBySub:
    """A pool's users sorted by sub, for one version of its user set."""

    def __init__(self, users) -> None:
        pairs = sorted((u.attribute_lookup.get("sub") or u.id, u) for u in users)
        self.subs = [s for s, _ in pairs]
        self.users = [u for _, u in pairs]


def _sorted(pool) -> _SortedBySub:
    version = getattr(pool.users, "version", None)
    cached = getattr(pool, "emu_sorted_by_sub", None)
    if cached is None or version is None or cached[0] != version:
        cached = (version, _SortedBySub(pool.users.values()))
        pool.emu_sorted_by_sub = cached
    return cached[1]


def install() -> None:
    from moto.cognitoidp.responses import CognitoIdpResponse

    previous = CognitoIdpResponse.list_users

    def list_users(self):
        match = _FILTER.match(self._get_param("Filter") or "")
        if not match:
            return previous(self)
        from moto.cognitoidp.exceptions import InvalidParameterException
        from moto.core.responses import ActionResult

        op, value = match.groups()
        limit = list_users_limit(self)
        pool = self.backend.describe_user_pool(self._get_param("UserPoolId"))
        index = _sorted(pool)
        lo = bisect.bisect_left(index.subs, value)
        if op == "=":
            hi = bisect.bisect_right(index.subs, value, lo)
        else:
            # Every string with the prefix sorts before prefix + U+10FFFF.
            hi = bisect.bisect_left(index.subs, value + "\U0010ffff", lo)
        token = self._get_param("PaginationToken")
        start = lo
        if token:
            if not token.startswith(_TOKEN_PREFIX):
                raise InvalidParameterException("Invalid pagination token")
            try:
                last = base64.urlsafe_b64decode(token[len(_TOKEN_PREFIX):]).decode()
            except (ValueError, TypeError):
                raise InvalidParameterException("Invalid pagination token") from None
            start = max(lo, bisect.bisect_right(index.subs, last))
        page = index.users[start : min(start + limit, hi)]
        attributes_to_get = self._get_param("AttributesToGet")
        body = {
            "Users": [
                user.to_json(extended=True, attributes_to_get=attributes_to_get) for user in page
            ]
        }
        if start + limit < hi:
            last_sub = index.subs[start + limit - 1]
            body["PaginationToken"] = _TOKEN_PREFIX + base64.urlsafe_b64encode(
                last_sub.encode()).decode()
        return ActionResult(body)

    CognitoIdpResponse.list_users = list_users
