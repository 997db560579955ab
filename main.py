"""``python main.py --name YourDataset.your_dataset --num_threads 64``: the same as the ``syphus`` command."""

import sys

from syphus.cli import main

if __name__ == "__main__":
    sys.exit(main())
