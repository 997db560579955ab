"""``python -m syphus.cli``: the same as the ``syphus`` command."""

import sys

from syphus.cli.main import main

sys.exit(main())
