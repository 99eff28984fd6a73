"""Why a CRAM-MD5 or APOP login failed when the password may have been right.

Those mechanisms need the password in a form only some stored schemes keep (PLAIN, or
CRAM-MD5's prepared state: docs/accounts.md). When an existing account's scheme cannot answer
the mechanism, every attempt fails whatever the client sends; the login log line says so
(``reason=stored-scheme-cannot-answer scheme=...``) for the operator. The client is never told:
its reply is the same as for a wrong password, so it learns nothing about the account.
"""

from __future__ import annotations

from seikyou_auth.accounts import AccountStore
from seikyou_auth.errors import StoreUnavailable
from seikyou_auth.schemes import mechanism_allowed, scheme_of

__all__ = ["stored_scheme_mismatch"]

_NEEDS_A_KEPT_PASSWORD = frozenset({"CRAM-MD5", "APOP"})


async def stored_scheme_mismatch(
    store: AccountStore, username: str | None, mechanism: str
) -> str | None:
    """The account's stored scheme when it cannot answer ``mechanism``, else None.

    Called only after a failed check, whose own lookup the store has just answered.
    """
    if username is None or mechanism.upper() not in _NEEDS_A_KEPT_PASSWORD:
        return None
    try:
        account = await store.lookup(username)
    except StoreUnavailable:
        return None
    if account is None or mechanism_allowed(mechanism, account.password):
        return None
    return scheme_of(account.password)
