"""regions.kind: mask (an outline) or box (a weak label, the rectangle around a tattoo)

Revision ID: b0c5e21a7f10
Revises: 713cf7d91758
Create Date: 2026-12-07 02:20:00

Existing rows are masks (the server default fills them in).
"""
from alembic import op
import sqlalchemy as sa

revision = 'b0c5e21a7f10'
down_revision = '713cf7d91758'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=8), server_default='mask', nullable=False))


def downgrade():
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.drop_column('kind')
