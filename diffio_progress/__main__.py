"""`python -m diffio_progress <command>`: the command line of ``tools/cli.py``."""

import sys

from diffio_progress.tools.cli import main

sys.exit(main())
