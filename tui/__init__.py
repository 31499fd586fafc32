"""pacs-tui: a keyboard-driven terminal navigator for a PACS over DICOMweb."""

__version__ = "0.1.0"
