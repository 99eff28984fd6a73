"""What a store returns, and the interface every store (passwd-file, a later SQL one) offers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Account:
    """One subscriber. ``password`` is the stored ``{SCHEME}...`` value and never shown in repr."""

    name: str  # canonical bare account name, lower case ("ma10001a")
    password: str = field(repr=False)
    uid: str = ""
    gid: str = ""
    gecos: str = ""
    home: str = ""
    shell: str = ""
    # Dovecot extra fields (``key=value``); they may carry secrets too (e.g. ``pass=``).
    extra: Mapping[str, str] = field(default_factory=dict, repr=False)


class AccountStore(Protocol):
    async def lookup(self, username: str) -> Account | None:
        """The account for ``username`` as the client typed it, or None when there is none.

        The store lower-cases the name and strips ``@domain`` when the domain is its own.
        A temporary failure raises ``seikyou_auth.errors.StoreUnavailable``.
        """
        ...
