"""The server side of the Dovecot authentication protocol (``protocol = "auth"``).

Postfix (``smtpd_sasl_type = dovecot``) and Exim (``driver = dovecot``) ask it to
check SASL exchanges; it answers with the same mechanisms, accounts, cleartext
policy, failure penalty and login log line as this server's own SMTP and POP3.
``wire`` holds the line format, ``requests`` the parsing of ``AUTH`` and the
per-connection request table, ``connection`` the command table and handler.
"""

from seikyou_auth.server.dovecot_auth.connection import handle_connection

__all__ = ["handle_connection"]
