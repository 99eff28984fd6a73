"""The SMTP server: MX (local delivery), submission (587, STARTTLS) and submissions (465).

``handle_connection(reader, writer, ctx)`` serves one client; ``app`` calls it
for every connection on an smtp listener.
"""

from seikyou_auth.server.smtp.connection import handle_connection

__all__ = ["handle_connection"]
