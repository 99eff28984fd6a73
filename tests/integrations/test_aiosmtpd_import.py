"""Without aiosmtpd installed, the integration says which extra to install."""

from __future__ import annotations

import subprocess
import sys

HIDE_AIOSMTPD_AND_IMPORT = """
import sys
sys.modules["aiosmtpd"] = None  # what an environment without the package looks like
try:
    import seikyou_auth.integrations.aiosmtpd
except ImportError as error:
    print(error)
else:
    raise SystemExit("imported without aiosmtpd")
"""


def test_import_without_aiosmtpd_names_the_extra() -> None:
    result = subprocess.run(
        [sys.executable, "-c", HIDE_AIOSMTPD_AND_IMPORT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'seikyou-auth[aiosmtpd]'" in result.stdout


def test_the_rest_of_the_package_imports_without_aiosmtpd() -> None:
    code = (
        'import sys; sys.modules["aiosmtpd"] = None\n'
        "import seikyou_auth.sasl, seikyou_auth.integrations"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
