"""ach: bank accounts beside cards, debit authorisations, bank debits and their returns in
the journal

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('method', sa.String(length=8), nullable=False,
                                      server_default='card'))
        batch_op.add_column(sa.Column('account_type', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('routing_number', sa.String(length=9), nullable=True))
        batch_op.add_column(sa.Column('business', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('authorization_id', sa.Integer(), nullable=True))
        # A bank account has no expiry.
        batch_op.alter_column('exp_month', existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column('exp_year', existing_type=sa.Integer(), nullable=True)

    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('method', sa.String(length=8), nullable=False,
                                      server_default='card'))
        batch_op.add_column(sa.Column('sec_code', sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column('account_type', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('holder_name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('authorization_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('return_code', sa.String(length=4), nullable=True))
        batch_op.add_column(sa.Column('returned_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('return_fee_ref', sa.String(length=40), nullable=True))

    op.create_table('ach_authorizations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('card_id', sa.Integer(), nullable=True),
    sa.Column('account_label', sa.String(length=60), nullable=False),
    sa.Column('scope', sa.String(length=10), nullable=False),
    sa.Column('given', sa.String(length=8), nullable=False),
    sa.Column('sec_code', sa.String(length=3), nullable=False),
    sa.Column('text_version', sa.String(length=16), nullable=False),
    sa.Column('text_hash', sa.String(length=64), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('accepted_at', sa.DateTime(), nullable=False),
    sa.Column('client_address', sa.String(length=45), nullable=True),
    sa.Column('admin_id', sa.Integer(), nullable=True),
    sa.Column('reference', sa.String(length=100), nullable=True),
    sa.Column('transaction_id', sa.String(length=18), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_by', sa.String(length=20), nullable=True),
    sa.ForeignKeyConstraint(['card_id'], ['cards.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ach_authorizations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ach_authorizations_customer_id'), ['customer_id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('ach_authorizations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ach_authorizations_customer_id'))
    op.drop_table('ach_authorizations')
    # Bank debits and bank accounts have no place in the older tables.
    op.execute("DELETE FROM payment_attempts WHERE method = 'bank'")
    op.execute("DELETE FROM cards WHERE method = 'bank'")
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        for name in ('return_fee_ref', 'returned_on', 'return_code', 'authorization_id',
                     'holder_name', 'account_type', 'sec_code', 'method'):
            batch_op.drop_column(name)
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.alter_column('exp_year', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('exp_month', existing_type=sa.Integer(), nullable=False)
        for name in ('authorization_id', 'business', 'routing_number', 'account_type', 'method'):
            batch_op.drop_column(name)
