"""Linking federated identities to native users: ``AdminLinkProviderForUser`` and
``AdminDisableProviderForUser``, which moto 5.2.5 lacks (it has the identity providers themselves:
CreateIdentityProvider, ListIdentityProviders, DescribeIdentityProvider).

Why this module exists: cognito-migrate links each migrated user's social and enterprise
identities so that their first federated sign-in lands on the migrated user; the tests must see
the links made, once each, and Cognito's refusals.

What is emulated (API reference of AdminLinkProviderForUser / AdminDisableProviderForUser, and the
developer guide's "Linking federated users to an existing user profile"):

* ``DestinationUser`` must be a native user (``ProviderName`` ``Cognito``, its username as
  ``ProviderAttributeValue``): else ``InvalidParameterException``; no user of that username:
  ``UserNotFoundException``. Only the username is looked up, never an alias: in a pool whose
  usernames are email addresses or phone numbers that is the id Cognito generated.
* ``SourceUser.ProviderName`` must be one of the pool's identity providers
  (``InvalidParameterException`` otherwise); for the social providers (``Google``, ``Facebook``,
  ``LoginWithAmazon``, ``SignInWithApple``) ``ProviderAttributeName`` must be ``Cognito_Subject``.
* At most five identities per user: a sixth is ``LimitExceededException``.
* A destination user with a value for an immutable custom attribute cannot be linked
  (``InvalidParameterException``; the API reference: "If you have assigned the user any immutable
  custom attributes, the operation won't succeed").
* An identity already linked (to this user or another) is refused with
  ``InvalidParameterException`` ("Merging is not currently supported, provide a SourceUser that has
  not been linked/merged"); a federated user that already exists in the pool (``<Provider>_<id>``,
  it signed in before) is refused with ``AliasExistsException``. These two answers are this
  project's reading: the documentation says only that the source user must not exist yet.
* A linked identity shows in the native user's ``identities`` attribute (AdminGetUser, ListUsers):
  a JSON string of ``[{"userId", "providerName", "providerType", "issuer", "primary",
  "dateCreated"}]``, the shape Cognito gives linked users.
* ``AdminDisableProviderForUser`` with ``User`` = (provider, ``Cognito_Subject``, id) removes the
  link wherever it is; nothing linked is not an error.
"""

from __future__ import annotations

import json
import time

from shared import CognitoError, invalid_parameter

SOCIAL = {"Google", "Facebook", "LoginWithAmazon", "SignInWithApple"}
MAX_IDENTITIES = 5


def _identities(user) -> list[dict]:
    text = user.attribute_lookup.get("identities")
    if not text:
        return []
    try:
        return json.loads(text)
    except ValueError:
        return []


def _set_identities(user, items: list[dict]) -> None:
    if items:
        user.update_attributes([{"Name": "identities", "Value": json.dumps(items)}])
    elif "identities" in user.attribute_lookup:
        user.delete_attributes(["identities"])


def _linked_anywhere(pool, provider: str, user_id: str):
    for other in pool.users.values():
        for item in _identities(other):
            if item.get("providerName") == provider and item.get("userId") == user_id:
                return other
    return None


def admin_link_provider_for_user(self):
    pool = self.backend.describe_user_pool(self._get_param("UserPoolId"))
    dest = self._get_param("DestinationUser") or {}
    src = self._get_param("SourceUser") or {}
    if dest.get("ProviderName") != "Cognito":
        raise invalid_parameter("DestinationUser must be a native user (ProviderName Cognito)")
    # The API reference: "For a native username + password user, the ProviderAttributeValue for
    # the DestinationUser should be the username in the user pool" -- the username itself, not an
    # alias (in an email- or phone-as-username pool that is the generated id, not the address).
    user = pool.users.get(dest.get("ProviderAttributeValue") or "")
    if user is None:
        raise CognitoError("UserNotFoundException", "User does not exist.")
    # The API reference: "All attributes in the DestinationUser profile must be mutable. If you
    # have assigned the user any immutable custom attributes, the operation won't succeed."
    for name, attribute in pool.schema_attributes.items():
        if name.startswith("custom:") and not attribute.mutable and user.attribute_lookup.get(name):
            raise invalid_parameter(
                f"The destination user has the immutable custom attribute {name}; "
                "all attributes of the destination user must be mutable."
            )
    provider = src.get("ProviderName") or ""
    idp = pool.identity_providers.get(provider)
    if idp is None:
        raise invalid_parameter(f"Provider {provider} does not exist for this user pool.")
    user_id = src.get("ProviderAttributeValue") or ""
    if not user_id:
        raise invalid_parameter("SourceUser needs a ProviderAttributeValue")
    if provider in SOCIAL and src.get("ProviderAttributeName") != "Cognito_Subject":
        raise invalid_parameter("ProviderAttributeName must be Cognito_Subject for a social provider")
    if pool._get_user(f"{provider}_{user_id}") is not None:
        raise CognitoError("AliasExistsException", "The federated user already exists in the user pool.")
    if _linked_anywhere(pool, provider, user_id) is not None:
        raise invalid_parameter(
            "Merging is not currently supported, provide a SourceUser that has not been linked/merged"
        )
    items = _identities(user)
    if len(items) >= MAX_IDENTITIES:
        raise CognitoError("LimitExceededException", "The maximum number of identities is five.")
    items.append(
        {
            "userId": user_id,
            "providerName": provider,
            "providerType": idp.extended_config.get("ProviderType") or provider,
            "issuer": None,
            "primary": False,
            "dateCreated": int(time.time() * 1000),
        }
    )
    _set_identities(user, items)
    return "{}"


def admin_disable_provider_for_user(self):
    pool = self.backend.describe_user_pool(self._get_param("UserPoolId"))
    who = self._get_param("User") or {}
    provider, user_id = who.get("ProviderName") or "", who.get("ProviderAttributeValue") or ""
    if provider not in pool.identity_providers:
        raise invalid_parameter(f"Provider {provider} does not exist for this user pool.")
    other = _linked_anywhere(pool, provider, user_id)
    if other is not None:
        _set_identities(
            other,
            [
                i
                for i in _identities(other)
                if not (i.get("providerName") == provider and i.get("userId") == user_id)
            ],
        )
    return "{}"


def install() -> None:
    from moto.cognitoidp.responses import CognitoIdpResponse

    CognitoIdpResponse.admin_link_provider_for_user = admin_link_provider_for_user
    CognitoIdpResponse.admin_disable_provider_for_user = admin_disable_provider_for_user
