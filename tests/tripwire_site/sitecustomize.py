"""Arms the loopback tripwire in every Python process started with this folder on PYTHONPATH."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests import tripwire  # noqa: E402

tripwire.arm()
