"""tests/hostile speaks SMTP through the SMTP tests' wire client (tests/smtp/smtp_wire.py)."""

from __future__ import annotations

import sys
from pathlib import Path

SMTP_TESTS = str(Path(__file__).resolve().parents[1] / "smtp")
if SMTP_TESTS not in sys.path:
    sys.path.insert(0, SMTP_TESTS)
