"""fees: the service fee on payment attempts and refunds, and per charge run

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    # Attempts and refunds made before fees existed had none: 0 is what they took.
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fee_cents', sa.BigInteger(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('fee_tax_cents', sa.BigInteger(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('fee_rate', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('fee_vat_rate', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('fee_text', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('fee_transaction_id', sa.Integer(), nullable=True))
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fee_cents', sa.BigInteger(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('fee_tax_cents', sa.BigInteger(), nullable=False,
                                      server_default='0'))
    with op.batch_alter_table('charge_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('with_fees', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('charge_runs', schema=None) as batch_op:
        batch_op.drop_column('with_fees')
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_column('fee_tax_cents')
        batch_op.drop_column('fee_cents')
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        for column in ('fee_transaction_id', 'fee_text', 'fee_vat_rate', 'fee_rate',
                       'fee_tax_cents', 'fee_cents'):
            batch_op.drop_column(column)
