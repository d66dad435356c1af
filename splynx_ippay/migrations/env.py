"""Alembic environment: runs the add-on's migrations against the configured URL."""

from alembic import context

from splynx_ippay.db import make_engine
from splynx_ippay.models import Base

config = context.config


def run_migrations_online():
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
