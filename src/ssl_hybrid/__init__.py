"""ssl-hybrid: semi-supervised image classification trained generatively and discriminatively at once."""

import time

__version__ = "0.1.0"
IMPORTED_AT = time.monotonic()  # a run's `startup_seconds` counts from here (import) to its first training step
