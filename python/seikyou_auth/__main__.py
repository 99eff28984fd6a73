"""``python -m seikyou_auth`` is the ``seikyou-auth`` command."""

import sys

from seikyou_auth.cli import main

sys.exit(main())
