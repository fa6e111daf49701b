"""media: a path_key (SHA-256 of the path) carries the unique constraint instead of the path itself, whose
b-tree entry PostgreSQL refuses past about 2,700 bytes; device and inode say which paths are one file (hardlinks).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 18:40:00
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("media") as batch:
        batch.add_column(sa.Column("path_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("device", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("inode", sa.BigInteger(), nullable=True))
    media = sa.table("media", sa.column("id", BigId), sa.column("path", sa.Text), sa.column("path_key", sa.String))
    conn = op.get_bind()
    last = -1
    while True:  # in chunks: a million-file catalog is not read into memory at once
        rows = conn.execute(
            sa.select(media.c.id, media.c.path).where(media.c.id > last).order_by(media.c.id).limit(5000)
        ).all()
        if not rows:
            break
        conn.execute(
            media.update().where(media.c.id == sa.bindparam("row_id")).values(path_key=sa.bindparam("key")),
            [{"row_id": r.id, "key": hashlib.sha256(r.path.encode("utf-8")).hexdigest()} for r in rows],
        )
        last = rows[-1].id
    with op.batch_alter_table("media") as batch:
        batch.alter_column("path_key", existing_type=sa.String(64), nullable=False)
        batch.drop_constraint("uq_media_collection_path", type_="unique")
        batch.create_unique_constraint("uq_media_collection_path_key", ["collection_id", "path_key"])
        batch.create_index("ix_media_collection_inode", ["collection_id", "device", "inode"])


def downgrade() -> None:
    with op.batch_alter_table("media") as batch:
        batch.drop_index("ix_media_collection_inode")
        batch.drop_constraint("uq_media_collection_path_key", type_="unique")
        batch.create_unique_constraint("uq_media_collection_path", ["collection_id", "path"])
        batch.drop_column("inode")
        batch.drop_column("device")
        batch.drop_column("path_key")
