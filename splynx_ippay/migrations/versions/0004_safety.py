"""money safety: terminals on cards and attempts, refund history, card-testing ledger,
settings stamp

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    # Cards and attempts remember the terminal (and endpoint) they belong to. Rows written
    # before this revision keep NULL: they were made on the terminal in effect then, which
    # services/cards.py takes to be the customer's current one.
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('terminal_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('gateway_mode', sa.String(length=8), nullable=True))
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('terminal_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('gateway_mode', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('partner_id', sa.Integer(), nullable=True))

    op.create_table('refund_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('refund_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.String(length=255), nullable=True),
    sa.ForeignKeyConstraint(['refund_id'], ['refunds.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('refund_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refund_events_refund_id'), ['refund_id'], unique=False)

    op.create_table('card_trials',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('link_key', sa.String(length=40), nullable=True),
    sa.Column('client_key', sa.String(length=64), nullable=True),
    sa.Column('purpose', sa.String(length=8), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=255), nullable=True),
    sa.Column('card_last4', sa.String(length=4), nullable=True),
    sa.Column('transaction_id', sa.String(length=18), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('card_trials', schema=None) as batch_op:
        batch_op.create_index('ix_card_trials_customer_at', ['customer_id', 'at'], unique=False)
        batch_op.create_index('ix_card_trials_link_at', ['link_key', 'at'], unique=False)
        batch_op.create_index('ix_card_trials_client_at', ['client_key', 'at'], unique=False)
        batch_op.create_index('ix_card_trials_outcome_at', ['outcome', 'at'], unique=False)

    op.create_table('settings_stamp',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('changed_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    # One row, created here so that bumping it is always a plain UPDATE.
    op.execute("INSERT INTO settings_stamp (id, version, changed_at) "
               "VALUES (1, 0, CURRENT_TIMESTAMP)")


def downgrade():
    op.drop_table('settings_stamp')
    op.drop_table('card_trials')
    op.drop_table('refund_events')
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.drop_column('partner_id')
        batch_op.drop_column('gateway_mode')
        batch_op.drop_column('terminal_id')
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_column('gateway_mode')
        batch_op.drop_column('terminal_id')
