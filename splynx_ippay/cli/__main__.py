"""``python3 -m splynx_ippay.cli`` (the package's postrm runs it from a kept copy)."""

import sys

from . import main

sys.exit(main())
