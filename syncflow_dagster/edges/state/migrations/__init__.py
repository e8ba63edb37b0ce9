"""Alembic migrations of the state store (``env.py``, ``versions/``)."""
