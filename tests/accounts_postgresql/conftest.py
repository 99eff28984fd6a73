"""The real PostgreSQL of tests/support/postgresql.py, for every test here."""

from support.postgresql import postgresql_dsn, postgresql_session

__all__ = ["postgresql_dsn", "postgresql_session"]
