"""Durable task history in PostgreSQL (SQLAlchemy 2 models and Alembic migrations arrive with issue 3)."""
