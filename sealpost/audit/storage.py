"""Everything the relay keeps: its SQLite file with WAL and shared memory, and every row."""

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, inspect, text


@dataclass
class StorageDump:
    files: dict[str, bytes] = field(default_factory=dict)  # name -> bytes (db, -wal, -shm)
    rows_text: str = ""  # every row of every table, one per line
    rows_binary: bytes = b""  # raw bytes of every binary column
    row_counts: dict[str, int] = field(default_factory=dict)
    columns: dict[str, list[str]] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(len(b) for b in self.files.values())


def _render(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + bytes(value).hex()
    return repr(value)


def read_files(db_path: Path, into: StorageDump, tag: str = "") -> None:
    """The database file and its companions (-wal, -shm, -journal) as they are on disk now."""
    for path in sorted(db_path.parent.glob(db_path.name + "*")):
        into.files[path.name + tag] = path.read_bytes()


def dump_rows(db_url: str, into: StorageDump) -> None:
    """Every row of every table, through SQLAlchemy's inspection (no table list assumed)."""
    engine = create_engine(db_url)
    lines: list[str] = []
    binary: list[bytes] = []
    try:
        with engine.connect() as conn:
            for table in inspect(conn).get_table_names():
                result = conn.execute(text(f'SELECT * FROM "{table}"'))
                columns = list(result.keys())
                into.columns[table] = columns
                count = 0
                for row in result:
                    count += 1
                    lines.append(
                        f"{table}\t"
                        + "\t".join(f"{c}={_render(v)}" for c, v in zip(columns, row, strict=True))
                    )
                    binary += [bytes(v) for v in row if isinstance(v, bytes | memoryview)]
                into.row_counts[table] = count
    finally:
        engine.dispose()
    into.rows_text = "\n".join(lines)
    into.rows_binary = b"\n".join(binary)
