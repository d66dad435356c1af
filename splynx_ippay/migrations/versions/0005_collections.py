"""collections: autopay per card and per customer, charge runs from schedules, balance items,
dunning cases, the message outbox, reconciliation findings

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('autopay', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('hard_declines', sa.Integer(), nullable=False,
                                      server_default='0'))
    # Automatic payments use the default card unless its customer says otherwise.
    op.execute("UPDATE cards SET autopay = is_default")

    op.create_table('customer_prefs',
    sa.Column('customer_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('autopay', sa.Boolean(), nullable=False),
    sa.Column('reminders', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('customer_id')
    )

    with op.batch_alter_table('charge_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('schedule_key', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('mode', sa.String(length=8), nullable=False,
                                      server_default='due'))
        batch_op.create_unique_constraint('uq_charge_runs_schedule_key', ['schedule_key'])

    with op.batch_alter_table('charge_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('target_key', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('card_id', sa.Integer(), nullable=True))
        batch_op.alter_column('invoice_id', existing_type=sa.Integer(), nullable=True)
    op.execute("UPDATE charge_items SET target_key = 'invoice:' || invoice_id"
               if op.get_bind().dialect.name != 'mysql' else
               "UPDATE charge_items SET target_key = CONCAT('invoice:', invoice_id)")
    with op.batch_alter_table('charge_items', schema=None) as batch_op:
        batch_op.alter_column('target_key', existing_type=sa.String(length=40), nullable=False)
        batch_op.create_unique_constraint('uq_charge_items_run_target', ['run_id', 'target_key'])

    op.create_table('collection_cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('schedule_id', sa.String(length=40), nullable=True),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('tries', sa.Integer(), nullable=False),
    sa.Column('first_try_on', sa.Date(), nullable=False),
    sa.Column('last_try_on', sa.Date(), nullable=True),
    sa.Column('next_try_on', sa.Date(), nullable=True),
    sa.Column('last_code', sa.String(length=4), nullable=True),
    sa.Column('last_category', sa.String(length=8), nullable=True),
    sa.Column('excluded_cards', sa.String(length=255), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('recovered_cents', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=255), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('invoice_id')
    )
    with op.batch_alter_table('collection_cases', schema=None) as batch_op:
        batch_op.create_index('ix_collection_cases_next', ['state', 'next_try_on'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('object_key', sa.String(length=80), nullable=False),
    sa.Column('recipient', sa.String(length=255), nullable=False),
    sa.Column('sender', sa.String(length=255), nullable=False),
    sa.Column('reply_to', sa.String(length=255), nullable=True),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('tries', sa.Integer(), nullable=False),
    sa.Column('next_try_at', sa.DateTime(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('purpose', 'object_key', name='uq_outbox_purpose_object')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_due', ['status', 'next_try_at'], unique=False)

    op.create_table('reconcile_findings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('found_on', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('finding_key', sa.String(length=80), nullable=False),
    sa.Column('attempt_id', sa.Integer(), nullable=True),
    sa.Column('splynx_payment_id', sa.Integer(), nullable=True),
    sa.Column('detail', sa.String(length=255), nullable=False),
    sa.Column('repaired', sa.Boolean(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('finding_key')
    )


def downgrade():
    op.drop_table('reconcile_findings')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_due')
    op.drop_table('outbox')
    with op.batch_alter_table('collection_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_collection_cases_next')
    op.drop_table('collection_cases')
    with op.batch_alter_table('charge_items', schema=None) as batch_op:
        batch_op.drop_constraint('uq_charge_items_run_target', type_='unique')
        batch_op.drop_column('card_id')
        batch_op.drop_column('target_key')
    with op.batch_alter_table('charge_runs', schema=None) as batch_op:
        batch_op.drop_constraint('uq_charge_runs_schedule_key', type_='unique')
        batch_op.drop_column('mode')
        batch_op.drop_column('schedule_key')
    op.drop_table('customer_prefs')
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_column('hard_declines')
        batch_op.drop_column('autopay')
