"""Face recognition identity service.

Layers, each importing only those before it: ``config``/``errors``/``logs``; ``core`` (use-cases and rules,
no frameworks); ``vision`` (detector, alignment, embedders, offline weights) and ``store`` (persons and
vectors); ``compose`` (wires them from settings); ``web`` (Flask). ``create_app`` is the gunicorn entry point.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from .config import Settings

__all__ = ["__version__", "create_app"]
__version__ = "0.1.0"  # pyproject.toml's (a test keeps them equal)


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    """The Flask app (``service.web.create_app``); imported lazily so ``python -m service.errors`` and the
    CLI do not load Flask."""
    from .web import create_app as create

    return create(settings, **overrides)
