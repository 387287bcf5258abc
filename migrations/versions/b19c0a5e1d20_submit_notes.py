"""submit notes (submit-time checks an annotator overrode, with reasons) and region comments (issue 19)

Revision ID: b19c0a5e1d20
Revises: b0c5e21a7f10
Create Date: 2026-12-07 02:30:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'b19c0a5e1d20'
down_revision = 'b0c5e21a7f10'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('submit_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('annotation_version', sa.Integer(), nullable=False),
    sa.Column('overrides', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('submit_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_submit_notes_image_id'), ['image_id'], unique=False)
    op.create_table('region_comments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('region_id', sa.String(length=64), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('annotation_version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('region_comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_region_comments_image_id'), ['image_id'], unique=False)


def downgrade():
    with op.batch_alter_table('region_comments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_region_comments_image_id'))
    op.drop_table('region_comments')
    with op.batch_alter_table('submit_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submit_notes_image_id'))
    op.drop_table('submit_notes')
