"""media: what a photo's EXIF says (date taken, camera, how many tags), for the keep-best rules; meta_version says
which rows had it read, so an existing library fills them on its next index run without re-embedding.

Nullable columns only, no data copied: SQLite adds them in place (batch mode's "auto" leaves ADD COLUMN alone), so
``media`` is not rebuilt.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("media") as batch:
        batch.add_column(sa.Column("taken_at", sa.DateTime(timezone=False), nullable=True))
        batch.add_column(sa.Column("camera", sa.String(100), nullable=True))
        batch.add_column(sa.Column("exif_fields", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("meta_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("media") as batch:
        batch.drop_column("meta_version")
        batch.drop_column("exif_fields")
        batch.drop_column("camera")
        batch.drop_column("taken_at")
