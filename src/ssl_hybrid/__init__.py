"""ssl-hybrid: semi-supervised image classification trained generatively and discriminatively at once."""

import os
import time

from omegaconf import OmegaConf

__version__ = "0.1.0"
IMPORTED_AT = time.monotonic()  # a run's `startup_seconds` counts from here (import) to its first training step


def _env_or_default(name: str, default: str) -> str:
    # unlike oc.env, a variable set to "" counts as unset: `${oc.env:PROJECT_ROOT,.}` would give "" and put the
    # logs at "/logs"; registered here because Hydra imports this package before it reads ssl_hybrid.conf
    return os.environ.get(name) or default


OmegaConf.register_new_resolver("env_or_default", _env_or_default, replace=True)
