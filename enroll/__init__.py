"""Bulk enrollment CLI: ``python -m enroll --help``."""
