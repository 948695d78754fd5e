# Makes conf/ importable as the package `ssl_hybrid.conf` (see pyproject.toml), so an installed
# ssl-hybrid finds its configs through Hydra's `pkg://ssl_hybrid.conf` search path.
