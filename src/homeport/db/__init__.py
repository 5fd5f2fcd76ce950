"""Database access: engine, declarative base, session scope and migrations."""
