"""Storage: SQLAlchemy 2.0 models, the store (db), Alembic migrations (migrate, migrations/) and the sync of rated data to a dataset repo (hub_sync). No services, no UI."""
