"""staff side: charge runs and items, workers, refunds and voids, staff audit trail

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('charge_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('active_key', sa.String(length=64), nullable=True),
    sa.Column('period_from', sa.Date(), nullable=False),
    sa.Column('period_to', sa.Date(), nullable=False),
    sa.Column('filters', sa.Text(), nullable=False),
    sa.Column('parent_run_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('admin_id', sa.Integer(), nullable=True),
    sa.Column('preview_invoices', sa.Integer(), nullable=False),
    sa.Column('preview_total_cents', sa.BigInteger(), nullable=False),
    sa.Column('expand_offset', sa.Integer(), nullable=False),
    sa.Column('claim_token', sa.String(length=64), nullable=True),
    sa.Column('note', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['parent_run_id'], ['charge_runs.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('active_key')
    )
    with op.batch_alter_table('charge_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_charge_runs_state'), ['state'], unique=False)

    op.create_table('charge_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('invoice_number', sa.String(length=40), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('customer_name', sa.String(length=100), nullable=True),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('claim_token', sa.String(length=64), nullable=True),
    sa.Column('claimed_at', sa.DateTime(), nullable=True),
    sa.Column('attempt_id', sa.Integer(), nullable=True),
    sa.Column('transaction_id', sa.String(length=18), nullable=True),
    sa.Column('masked_card', sa.String(length=40), nullable=True),
    sa.Column('action_code', sa.String(length=4), nullable=True),
    sa.Column('response_text', sa.String(length=120), nullable=True),
    sa.Column('message', sa.String(length=255), nullable=True),
    sa.Column('tries', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['attempt_id'], ['payment_attempts.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['run_id'], ['charge_runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'invoice_id', name='uq_charge_items_run_invoice')
    )
    with op.batch_alter_table('charge_items', schema=None) as batch_op:
        batch_op.create_index('ix_charge_items_run_status', ['run_id', 'status'], unique=False)

    op.create_table('charge_workers',
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('host', sa.String(length=100), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('token')
    )

    op.create_table('refunds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('attempt_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('lock_key', sa.String(length=40), nullable=True),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('action_code', sa.String(length=4), nullable=True),
    sa.Column('response_text', sa.String(length=120), nullable=True),
    sa.Column('approval', sa.String(length=12), nullable=True),
    sa.Column('message', sa.String(length=255), nullable=True),
    sa.Column('splynx_ref', sa.String(length=40), nullable=True),
    sa.Column('reason', sa.String(length=255), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('admin_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['attempt_id'], ['payment_attempts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lock_key')
    )
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refunds_attempt_id'), ['attempt_id'], unique=False)

    op.create_table('staff_actions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('admin_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('target', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('staff_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_actions_admin_id'), ['admin_id'], unique=False)

    # The transaction log filters attempts by date.
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_payment_attempts_created_at', ['created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_attempts_created_at')
    op.drop_table('staff_actions')
    op.drop_table('refunds')
    op.drop_table('charge_workers')
    op.drop_table('charge_items')
    op.drop_table('charge_runs')
