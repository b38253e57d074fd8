"""Alembic environment for the relay's tables (run through server/schema.py)."""

from alembic import context
from sqlalchemy import engine_from_config, pool
from sqlmodel import SQLModel

import server.models  # noqa: F401  (registers the relay's tables on the metadata)

config = context.config
target_metadata = SQLModel.metadata


def _ours(obj: object, name: str | None, type_: str, *_: object) -> bool:
    # The metadata may also hold the client's tables when both are imported in one process.
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", "")
    return bool(table and table.startswith("relay_"))


def _configure(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=_ours,
        render_as_batch=True,  # SQLite can only ALTER through table copies
        compare_type=True,
    )


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()


run()
