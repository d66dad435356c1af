"""leases: one concurrency budget per terminal, shared by every charge worker

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('gateway_leases',
    sa.Column('terminal_key', sa.String(length=120), nullable=False),
    sa.Column('slot', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('holder', sa.String(length=64), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('terminal_key', 'slot')
    )


def downgrade():
    op.drop_table('gateway_leases')
