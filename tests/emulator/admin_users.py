"""AdminCreateUser checks that Cognito makes and moto does not: alias uniqueness with
``ForceAliasCreation``, and attributes outside the pool's schema.

Why this module exists: cognito-migrate's AdminCreateUser writer must report
``AliasExistsException`` per user (or move the alias with ``--force-alias-creation``) and record
Cognito's ``InvalidParameterException`` for attributes the pool does not have. moto 5.2.5 raises
neither from AdminCreateUser, so tests could not see the writer handle them.

What is emulated (AWS documentation of AdminCreateUser and of aliases):

* In a pool with ``AliasAttributes``, an ``email`` or ``phone_number`` is an alias only while it is
  verified (``email_verified`` / ``phone_number_verified`` = true); ``preferred_username`` always.
  Creating a user whose alias another user already holds fails with
  ``AliasExistsException`` ("An account with the given email already exists.") unless
  ``ForceAliasCreation`` is true; then the alias moves: the other user's ``*_verified`` becomes
  ``false`` (``preferred_username`` is removed from the other user).
* An attribute that is neither a standard attribute nor in the pool's schema fails the call with
  ``InvalidParameterException`` ("Attributes did not conform to the schema: Type for attribute
  {name} could not be determined").

Not emulated: case-insensitive alias comparison, AdminUpdateUserAttributes alias checks.
"""

from __future__ import annotations

from shared import CognitoError

_ALIAS_VERIFIED = {"email": "email_verified", "phone_number": "phone_number_verified"}


def _attrs(items) -> dict:
    return {a.get("Name"): a.get("Value") for a in items or [] if a.get("Name")}


def _check(backend, pool_id: str, attributes: dict, force: bool) -> None:
    from moto.cognitoidp.models import CognitoIdpUserPoolAttribute

    pool = backend.describe_user_pool(pool_id)
    known = set(CognitoIdpUserPoolAttribute.STANDARD_SCHEMA) | set(pool.schema_attributes)
    for name in attributes:
        if name not in known:
            raise CognitoError(
                "InvalidParameterException",
                f"Attributes did not conform to the schema: Type for attribute {{{name}}} "
                "could not be determined",
            )
    aliases = pool.extended_config.get("AliasAttributes") or []
    moves = []
    for alias in aliases:
        value = attributes.get(alias)
        if not value:
            continue
        verified = _ALIAS_VERIFIED.get(alias)
        if verified and str(attributes.get(verified, "")).lower() != "true":
            continue
        for other in list(pool.users.values()):
            if other.attribute_lookup.get(alias) != value:
                continue
            if verified and str(other.attribute_lookup.get(verified, "")).lower() != "true":
                continue
            if not force:
                raise CognitoError(
                    "AliasExistsException", f"An account with the given {alias} already exists."
                )
            moves.append((other, alias, verified))
    for other, alias, verified in moves:
        if verified:
            other.update_attributes([{"Name": verified, "Value": "false"}])
        else:
            other.delete_attributes([alias])


def install() -> None:
    from moto.cognitoidp.responses import CognitoIdpResponse

    original = CognitoIdpResponse.admin_create_user

    def admin_create_user(self):
        pool_id = self._get_param("UserPoolId")
        attributes = _attrs(self._get_param("UserAttributes", []))
        force = bool(self._get_param("ForceAliasCreation", False))
        pool = self.backend.describe_user_pool(pool_id)
        existing = pool._get_user(self._get_param("Username") or "")
        if self._get_param("MessageAction") != "RESEND" and existing is None:
            _check(self.backend, pool_id, attributes, force)
        return original(self)

    CognitoIdpResponse.admin_create_user = admin_create_user
