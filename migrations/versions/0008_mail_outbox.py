"""mail outbox

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

Every message is a row of `outbox_messages`, written in the transaction of the change that causes it
and sent after the commit (partnermatch.outbox); `undeliverable_addresses` holds the addresses a mail
server refused for good, to which nothing more is sent.
"""

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_messages",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("user_id", GUID(length=16), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=True),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("headers", JsonB, nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("interruptions", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("claimed_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("sent_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('verification', 'password_reset', 'invitation', 'account_notice', 'rejection', "
            "'introduction', 'digest')",
            name=op.f("ck_outbox_messages_kind_valid"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed')", name=op.f("ck_outbox_messages_status_valid")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_messages")),
    )
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_messages_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_outbox_messages_to_address", ["to_address"], unique=False)
        batch_op.create_index("ix_outbox_messages_user_id", ["user_id"], unique=False)

    op.create_table(
        "undeliverable_addresses",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("since", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_undeliverable_addresses")),
        sa.UniqueConstraint("address", name=op.f("uq_undeliverable_addresses_address")),
    )


def downgrade() -> None:
    op.drop_table("undeliverable_addresses")
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_messages_user_id")
        batch_op.drop_index("ix_outbox_messages_to_address")
        batch_op.drop_index("ix_outbox_messages_due")
    op.drop_table("outbox_messages")
