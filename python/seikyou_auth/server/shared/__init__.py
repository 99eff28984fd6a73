"""State several nodes share through Redis: login penalties and the POP3 mailbox lease.

``SharedRedis`` (``client.py``) is the one connection and its fallback rule: when Redis
cannot answer within ``timeout``, every caller gets ``None`` and carries on node-locally,
with one warning per interval, until Redis answers again. ``SharedFailureCounts``
(``penalties.py``) and ``MailboxLeases`` (``lease.py``) are built on it. See
``docs/multinode.md``.
"""

from seikyou_auth.server.shared.client import SharedRedis
from seikyou_auth.server.shared.lease import Lease, MailboxLeases
from seikyou_auth.server.shared.penalties import SharedFailureCounts

__all__ = ["Lease", "MailboxLeases", "SharedFailureCounts", "SharedRedis"]
