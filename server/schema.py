"""The relay's schema version: migrate it, and refuse to run on one that does not match.

Migrations live in server/migrations (Alembic) and work on SQLite and PostgreSQL alike.
"""

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect


class SchemaMismatch(Exception):
    """The database's schema is not the one this relay's code expects."""


@dataclass(frozen=True)
class SchemaState:
    current: str | None  # revision recorded in the database (None: never migrated)
    head: str  # revision this code expects
    has_tables: bool

    @property
    def ok(self) -> bool:
        return self.current == self.head


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["engine"] = engine
    return config


def state(engine: Engine) -> SchemaState:
    head = ScriptDirectory.from_config(_config(engine)).get_current_head()
    assert head is not None
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        tables = [t for t in inspect(conn).get_table_names() if t.startswith("relay_")]
    return SchemaState(current=current, head=head, has_tables=bool(tables))


def upgrade(engine: Engine) -> SchemaState:
    """Bring the database to this code's schema (a no-op when it is already there)."""
    config = _config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return state(engine)


def require_current(engine: Engine, db_url: str) -> None:
    """Raise :class:`SchemaMismatch` with the command that fixes it, unless up to date."""
    found = state(engine)
    if found.ok:
        return
    fix = f"sealpost migrate --db '{db_url}'"
    if found.current is None:
        what = (
            "has relay tables but no migration record"
            if found.has_tables
            else "has no relay schema yet"
        )
        raise SchemaMismatch(f"The database {what}. Create or upgrade it with: {fix}")
    script = ScriptDirectory.from_config(_config(engine))
    if found.current not in {rev.revision for rev in script.walk_revisions()}:
        raise SchemaMismatch(
            f"The database is at schema {found.current}, newer than this relay knows "
            f"({found.head}). Upgrade Sealpost, or point --db at another database."
        )
    raise SchemaMismatch(
        f"The database is at schema {found.current}; this relay needs {found.head}. "
        f"Upgrade it with: {fix}"
    )
