"""``python -m manyfold`` runs the CLI."""

import sys

from manyfold.cli import main

sys.exit(main())
