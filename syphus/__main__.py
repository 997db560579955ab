"""``python -m syphus``: the same as the ``syphus`` command."""

import sys

from syphus.cli.main import main

sys.exit(main())
