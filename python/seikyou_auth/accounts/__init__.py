"""Account stores: the ``AccountStore`` protocol and Dovecot's passwd-file."""

from seikyou_auth.accounts.model import Account, AccountStore
from seikyou_auth.accounts.passwd_file import PasswdFileStore

__all__ = ["Account", "AccountStore", "PasswdFileStore"]
