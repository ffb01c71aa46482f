"""Answers of the user-update calls as Cognito gives them where moto 5.2.5 differs: deleting an
attribute the user does not have, and a group that does not exist.

Why this module exists: cognito-migrate's user-changes writer (``src/sink/user_changes``) maps
Cognito's answers to outcomes (``AlreadyDone``, ``UserNotFound``, ``Failed``), and ``sync`` relies
on those calls being idempotent. moto answers two of them differently from Cognito:

* ``AdminDeleteUserAttributes`` of an attribute the pool knows but the user does not have: moto
  fails the call with ``InvalidParameterException``; Cognito answers success (deleting is
  idempotent; the Amplify team observed 200 for attributes a user does not have). Here: such names
  are ignored; a name outside the pool's schema (standard attributes and the pool's custom ones)
  still fails with moto's message "Invalid user attributes: user.custom:x: Attribute does not exist
  in the schema." (one line per name), and nothing is deleted.
* A group that does not exist (``AdminAddUserToGroup``, ``AdminRemoveUserFromGroup``,
  ``ListUsersInGroup``, ``GetGroup``, ...): moto answers ``ResourceNotFoundException`` with the
  group's name as the message; Cognito's message is "Group not found." (a missing pool stays
  "User pool <id> does not exist.", so a client can tell the two apart).

As in Cognito and moto already: ``AdminRemoveUserFromGroup`` of a user who is not a member,
``AdminAddUserToGroup`` of a member, ``AdminDisableUser``/``AdminEnableUser`` of a user already
so, all succeed; every call on a missing user answers ``UserNotFoundException`` "User does not
exist.".
"""

from __future__ import annotations

from shared import CognitoError


def install() -> None:
    from moto.cognitoidp.exceptions import ResourceNotFoundError
    from moto.cognitoidp.models import CognitoIdpBackend, CognitoIdpUserPoolAttribute

    def get_group(self, user_pool_id: str, group_name: str):
        user_pool = self.describe_user_pool(user_pool_id)
        if group_name not in user_pool.groups:
            raise ResourceNotFoundError("Group not found.")
        return user_pool.groups[group_name]

    CognitoIdpBackend.get_group = get_group

    def admin_delete_user_attributes(self, user_pool_id: str, username: str, attributes):
        pool = self.describe_user_pool(user_pool_id)
        user = self.admin_get_user(user_pool_id, username)
        known = set(CognitoIdpUserPoolAttribute.STANDARD_SCHEMA) | set(pool.schema_attributes)
        unknown = [name for name in attributes or [] if name not in known]
        if unknown:
            raise CognitoError(
                "InvalidParameterException",
                "Invalid user attributes: "
                + "".join(f"user.{n}: Attribute does not exist in the schema.\n" for n in unknown),
            )
        present = [name for name in attributes or [] if name in user.attribute_lookup]
        if present:
            user.delete_attributes(present)

    CognitoIdpBackend.admin_delete_user_attributes = admin_delete_user_attributes
