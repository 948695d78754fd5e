"""Whether W&B's server can be used from here: credentials for it, and a server that answers. Free of Lightning, so
that ``ssl-hybrid-compare --wandb`` can ask at once."""

from __future__ import annotations

import netrc
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

# W&B's cloud API: wandb 0.31's default host, and the one before it, which `wandb login` may have written
WANDB_CLOUD_HOSTS = ("api.forge.coreweave.com", "api.wandb.ai")
SERVER_PROBE_TIMEOUT_S = 5.0


def wandb_base_url() -> str:
    return os.environ.get("WANDB_BASE_URL") or f"https://{WANDB_CLOUD_HOSTS[0]}"


def wandb_hosts() -> tuple[str, ...]:
    """The hosts whose ``~/.netrc`` entry counts: the server of ``WANDB_BASE_URL``, else both cloud hosts."""
    return (urlparse(wandb_base_url()).hostname,) if os.environ.get("WANDB_BASE_URL") else WANDB_CLOUD_HOSTS


def wandb_credentials_configured() -> bool:
    """True when ``WANDB_API_KEY`` is set or ``~/.netrc`` (``$NETRC``) holds a key for the W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return path.is_file() and any(netrc.netrc(path).authenticators(host) is not None for host in wandb_hosts())
    except (netrc.NetrcParseError, OSError):
        return False


def wandb_server_reachable(host: str, port: int = 443) -> bool:
    """Whether a TCP connection to ``host`` opens within a few seconds (wandb itself waits half a minute or more
    before failing)."""
    try:
        with socket.create_connection((host, port), timeout=SERVER_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def wandb_server_answers() -> bool:
    """Whether the W&B server (``WANDB_BASE_URL``, else W&B's cloud) is reachable at its scheme's port."""
    url = urlparse(wandb_base_url())
    return wandb_server_reachable(url.hostname, url.port or (80 if url.scheme == "http" else 443))
