"""Alembic migrations of the records schema (``schema.py``); ``upgrade`` brings a database to head."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

HERE = Path(__file__).resolve().parent


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema; safe to run on every start (a no-op when current)."""
    command.upgrade(alembic_config(engine), "head")
