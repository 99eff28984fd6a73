"""What the server keeps on disk: durable files, the maildirs and the outgoing queue.

``durable`` is the one way a file is written for good (fsync, link or rename, directory
fsync); ``maildir_layout`` the one Maildir layout; ``maildir_writer`` delivers into it,
``maildir_reader`` is POP3's view of it; ``spool`` holds a message while SMTP receives it;
``queue`` keeps mail for the smarthost. Nothing here imports ``seikyou_auth.server``.
"""
