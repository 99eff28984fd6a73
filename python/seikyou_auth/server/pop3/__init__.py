"""POP3 (RFC 1939, 2449, 2595, 3206, 5034) on the maildirs the SMTP side delivers to.

The app dispatches every ``protocol = "pop3"`` listener's connections to
``handle_connection``.
"""

from seikyou_auth.server.pop3.connection import handle_connection

__all__ = ["handle_connection"]
