"""ssl-hybrid: semi-supervised image classification trained generatively and discriminatively at once."""

__version__ = "0.1.0"
