"""Exception classes shared by both backends.

Defined once here; the Rust extension imports these same classes, so
``except SaslError`` works whichever backend raised it.
"""


class SaslError(ValueError):
    """Malformed SASL client data (bad base64, bad PLAIN/LOGIN/CRAM-MD5 payload)."""


class SaslCancelled(SaslError):
    """The client cancelled the exchange by sending ``*``."""


class UnsupportedScheme(ValueError):
    """An unknown password scheme, or one whose optional extra is not installed."""


class StoreUnavailable(Exception):
    """The account store cannot answer right now (temporary failure)."""
