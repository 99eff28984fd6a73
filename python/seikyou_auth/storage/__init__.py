"""What the server keeps on disk: the maildirs and the outgoing queue.

``maildir_writer`` delivers into a maildir, ``maildir_reader`` is POP3's view of one,
``queue`` keeps mail for the smarthost. Nothing here imports ``seikyou_auth.server``.
"""
