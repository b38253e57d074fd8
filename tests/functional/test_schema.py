"""Schema migrations on SQLite and PostgreSQL, and a relay that refuses a mismatched schema."""

import pytest
from alembic import command
from sqlalchemy import text

from server import schema
from server.app import create_app
from server.db import make_engine
from server.settings import RelaySettings
from tests.helpers import sealpost


def test_relay_refuses_unmigrated_then_newer_schema(db_url, home):
    refused = sealpost(home, "relay", "--db", db_url, "--port", "1", check=False)
    assert refused.returncode == 1
    assert "no relay schema yet" in refused.stderr and "sealpost migrate --db" in refused.stderr
    assert sealpost(home, "migrate", "--db", db_url, "--check", check=False).returncode == 1

    assert "schema none -> " in sealpost(home, "migrate", "--db", db_url).stdout
    assert "already at" in sealpost(home, "migrate", "--db", db_url).stdout
    create_app(RelaySettings(db=db_url)).state.engine.dispose()  # starts now

    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(schema.SchemaMismatch, match="newer than this relay knows"):
        create_app(RelaySettings(db=db_url))
    engine.dispose()


def test_migrations_match_the_models(db_url):
    """Autogenerate finds nothing to add: the migrations create exactly the models' schema."""
    engine = make_engine(db_url)
    schema.upgrade(engine)
    config = schema._config(engine)
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.check(config)
    engine.dispose()
