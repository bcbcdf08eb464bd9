"""Database models, engine helpers and migrations."""
