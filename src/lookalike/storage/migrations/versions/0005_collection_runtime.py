"""collections: the runtimes that computed a collection's vectors (``torch``, ``openvino-f32`` ...) and the cosine
tolerance they were held to against torch, so a library indexed with one runtime can be searched with another.

One nullable JSON column; SQLite adds it in place. Existing collections are filled with torch, the only runtime
before this revision, so a library grown later by another runtime lists both.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("runtime", sa.JSON(), nullable=True))
    collections = sa.table("collections", sa.column("runtime", sa.JSON()))
    op.execute(collections.update().values(runtime={"runtimes": ["torch"], "tolerance": 1.0}))


def downgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.drop_column("runtime")
