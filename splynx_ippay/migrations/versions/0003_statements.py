"""payment statements: the statement record logging each posted payment

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('statement_record_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_payment_attempts_statement', ['status', 'statement_record_id'],
                              unique=False)
    # Payments posted before this revision were never logged in a payment statement; 0 marks
    # them "none will be written", so reconcile does not back-fill the whole history.
    op.execute("UPDATE payment_attempts SET statement_record_id = 0 WHERE status = 'posted'")


def downgrade():
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_attempts_statement')
        batch_op.drop_column('statement_record_id')
