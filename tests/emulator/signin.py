"""Changes to moto's Cognito user model: sign-in with imported password hashes, Cognito's answer for
RESET_REQUIRED users, and indexes that keep per-call cost flat when a pool holds a million users.

Why this module exists:

* A user imported CONFIRMED with a ``password_hash`` has no plaintext password in moto. For
  ``AdminInitiateAuth`` (ADMIN_USER_PASSWORD_AUTH / ADMIN_NO_SRP_AUTH) and ``InitiateAuth``
  (USER_PASSWORD_AUTH) the password is checked against that hash with the reference libraries
  (``hashes.verify_password``): right -> moto's normal answer (tokens), wrong ->
  ``NotAuthorizedException: Incorrect username or password.`` Once the password is set through
  the API (AdminSetUserPassword, a challenge answer, ...) moto's own password applies again.
* A RESET_REQUIRED user without a password (every other imported user) signing in with a password
  gets ``PasswordResetRequiredException`` ("Password reset required for the user"), as in Cognito;
  moto would answer NotAuthorizedException.
* moto finds users of pools with ``UsernameAttributes`` (email/phone as username) by scanning every
  user, and ``ListUsers`` pages by scanning from the first user: O(n) per call, O(n^2) to page
  through a pool. An attribute index and position-hinted page tokens make both O(1) per user.
* moto lists a response class's methods with ``inspect`` on every request; cached here.
"""

from __future__ import annotations

import base64
import functools
import json
from collections import OrderedDict

from shared import CognitoError, list_users_limit


# --- sign-in ---------------------------------------------------------------------------------------


def _hash_of(user):
    imported = getattr(user, "emu_imported_hash", None)
    return imported if imported is not None and user.password is None else None


def _check_password(user, password, client_ok: bool, client_id: str):
    """Decides sign-in for imported users; returns the PASSWORD to hand to moto (None: moto's
    comparison with the user's missing password succeeds) or raises Cognito's error."""
    from moto.cognitoidp.exceptions import NotAuthorizedError, ResourceNotFoundError
    from moto.cognitoidp.models import UserStatus

    import hashes

    if user.status == UserStatus.RESET_REQUIRED and user.password is None and user.enabled:
        raise CognitoError("PasswordResetRequiredException", "Password reset required for the user")
    imported = _hash_of(user)
    if imported is not None:
        if not client_ok:
            raise ResourceNotFoundError(client_id)
        if not user.enabled:
            raise NotAuthorizedError("User is disabled.")
        if not isinstance(password, str) or not hashes.verify_password(imported, password):
            raise NotAuthorizedError("Incorrect username or password.")
        return None
    return password


def _patch_admin_initiate_auth(backend_class) -> None:
    original = backend_class.admin_initiate_auth

    def admin_initiate_auth(self, user_pool_id, client_id, auth_flow, auth_parameters):
        if auth_flow in ("ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH") and auth_parameters:
            pool = self.describe_user_pool(user_pool_id)
            user = pool._get_user(auth_parameters.get("USERNAME") or "")
            if user is not None:
                password = _check_password(
                    user, auth_parameters.get("PASSWORD"), client_id in pool.clients, client_id
                )
                auth_parameters = {**auth_parameters, "PASSWORD": password}
        return original(self, user_pool_id, client_id, auth_flow, auth_parameters)

    backend_class.admin_initiate_auth = admin_initiate_auth


def _patch_initiate_auth(backend_class) -> None:
    original = backend_class.initiate_auth

    def initiate_auth(self, client_id, auth_flow, auth_parameters):
        if auth_flow == "USER_PASSWORD_AUTH" and auth_parameters:
            pool = next((p for p in self.user_pools.values() if client_id in p.clients), None)
            user = pool._get_user(auth_parameters.get("USERNAME") or "") if pool else None
            if user is not None:
                password = _check_password(user, auth_parameters.get("PASSWORD"), True, client_id)
                auth_parameters = {**auth_parameters, "PASSWORD": password}
        return original(self, client_id, auth_flow, auth_parameters)

    backend_class.initiate_auth = initiate_auth


# --- username-attribute index ---------------------------------------------------------------------


class IndexedUsers(OrderedDict):
    """``pool.users`` that also indexes users by their email / phone_number values.

    The index may hold stale entries (a changed or deleted user); lookups re-check the user, so it
    only has to learn every *new* value: on insertion and on attribute updates."""

    def __init__(self, *args, **kwargs):
        self.by_attribute: dict[tuple, list] = {}
        self.version = 0  # changes whenever a user is added or removed
        self._values_cache: tuple[int, list] = (-1, [])
        super().__init__(*args, **kwargs)

    def values_list(self) -> list:
        """The users in insertion order, rebuilt only after users were added or removed."""
        version, values = self._values_cache
        if version != self.version:
            values = list(self.values())
            self._values_cache = (self.version, values)
        return values

    def __delitem__(self, username):
        super().__delitem__(username)
        self.version += 1

    def pop(self, *args):
        self.version += 1
        return super().pop(*args)

    def popitem(self, last=True):
        self.version += 1
        return super().popitem(last)

    def clear(self):
        self.version += 1
        super().clear()

    def __setitem__(self, username, user):
        if username not in self:
            self.version += 1
        super().__setitem__(username, user)
        try:
            user.emu_index = self
        except AttributeError:
            return
        self.learn(user)

    def learn(self, user) -> None:
        for attribute in ("email", "phone_number"):
            value = user.attribute_lookup.get(attribute)
            if value:
                names = self.by_attribute.setdefault((attribute, value), [])
                if user.username not in names:
                    names.append(user.username)

    def find(self, attribute: str, value: str):
        for username in self.by_attribute.get((attribute, value), ()):
            user = self.get(username)
            if user is not None and user.attribute_lookup.get(attribute) == value:
                return user
        return None


def _patch_user_index(pool_class, user_class, backend_class) -> None:
    original_init = pool_class.__init__

    def pool_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.users = IndexedUsers(self.users)

    def _get_user(self, username):
        attributes = self.extended_config.get("UsernameAttributes")
        if attributes and isinstance(self.users, IndexedUsers):
            for attribute in attributes:
                user = self.users.find(attribute, username)
                if user is not None:
                    return user
        return self.users.get(username)

    pool_class.__init__ = pool_init
    pool_class._get_user = _get_user

    for method_name in ("update_attributes", "delete_attributes"):
        original = getattr(user_class, method_name)

        def wrapper(self, *args, _original=original, **kwargs):
            result = _original(self, *args, **kwargs)
            index = getattr(self, "emu_index", None)
            if index is not None:
                index.learn(self)
            return result

        setattr(user_class, method_name, wrapper)

    from moto.cognitoidp.exceptions import AliasExistsException

    def _verify_email_is_not_used(self, user_pool_id, email):
        if not email:
            return
        pool = self.describe_user_pool(user_pool_id)
        if "email" not in pool.extended_config.get("UsernameAttributes", []):
            return
        if isinstance(pool.users, IndexedUsers) and pool.users.find("email", email) is not None:
            raise AliasExistsException()

    backend_class._verify_email_is_not_used = _verify_email_is_not_used


# --- ListUsers without a filter -------------------------------------------------------------------

_TOKEN_PREFIX = "emu1:"


def _list_token(position: int, user) -> str:
    raw = json.dumps([position, user.id]).encode()
    return _TOKEN_PREFIX + base64.urlsafe_b64encode(raw).decode()


def _patch_list_users(response_class) -> None:
    original = response_class.list_users

    def list_users(self):
        token = self._get_param("PaginationToken")
        if self._get_param("Filter") or (token and not token.startswith(_TOKEN_PREFIX)):
            return original(self)
        from moto.cognitoidp.exceptions import InvalidParameterException

        limit = list_users_limit(self)
        pool = self.backend.describe_user_pool(self._get_param("UserPoolId"))
        users = (
            pool.users.values_list()
            if isinstance(pool.users, IndexedUsers)
            else list(pool.users.values())
        )
        start = 0
        if token:
            try:
                position, user_id = json.loads(base64.urlsafe_b64decode(token[len(_TOKEN_PREFIX):]))
            except (ValueError, TypeError):
                raise InvalidParameterException("Invalid pagination token") from None
            if 0 <= position < len(users) and users[position].id == user_id:
                start = position
            else:  # users were deleted before the page: find the user again
                start = next((i for i, u in enumerate(users) if u.id == user_id), None)
                if start is None:
                    raise InvalidParameterException("Invalid pagination token")
        page = users[start : start + limit]
        attributes_to_get = self._get_param("AttributesToGet")
        body = {
            "Users": [
                user.to_json(extended=True, attributes_to_get=attributes_to_get) for user in page
            ]
        }
        if start + limit < len(users):
            body["PaginationToken"] = _list_token(start + limit, users[start + limit])
        from moto.core.responses import ActionResult

        return ActionResult(body)

    response_class.list_users = list_users


# --- moto's dispatch ------------------------------------------------------------------------------


def _cache_method_names() -> None:
    import moto.core.responses as core_responses

    core_responses.method_names_from_class = functools.lru_cache(maxsize=None)(
        core_responses.method_names_from_class
    )


def install() -> None:
    from moto.cognitoidp.models import CognitoIdpBackend, CognitoIdpUser, CognitoIdpUserPool
    from moto.cognitoidp.responses import CognitoIdpResponse

    _patch_admin_initiate_auth(CognitoIdpBackend)
    _patch_initiate_auth(CognitoIdpBackend)
    _patch_user_index(CognitoIdpUserPool, CognitoIdpUser, CognitoIdpBackend)
    _patch_list_users(CognitoIdpResponse)
    _cache_method_names()
