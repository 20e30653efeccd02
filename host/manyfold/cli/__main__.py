"""``python -m manyfold.cli`` runs the CLI (as ``python -m manyfold`` does)."""

import sys

from manyfold.cli import main

sys.exit(main())
