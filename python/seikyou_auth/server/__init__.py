"""asyncio SMTP and POP3 servers on top of seikyou_auth's SASL exchange.

``config`` (TOML), ``tls``, ``policy``, ``context`` and ``app`` are shared by
both protocols; ``smtp`` and ``pop3`` each expose ``handle_connection``.
"""
