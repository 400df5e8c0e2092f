"""match digests

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

`sent_digests` holds one row per member and digest period, written with the digest's outbox message
(partnermatch.digests); `interactions.source` says where an impression or click came from
('digest'; NULL: the portal or the API).
"""

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sent_digests",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("user_id", GUID(length=16), nullable=False),
        sa.Column("company_id", GUID(length=16), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("sent_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("leads", sa.Integer(), nullable=False),
        sa.Column("missions", sa.Integer(), nullable=False),
        sa.Column("outbox_message_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_sent_digests_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sent_digests_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sent_digests")),
        sa.UniqueConstraint("user_id", "period", name=op.f("uq_sent_digests_user_id")),
    )
    with op.batch_alter_table("sent_digests", schema=None) as batch_op:
        batch_op.create_index("ix_sent_digests_company_id", ["company_id"], unique=False)
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=16), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_interactions_source_valid"), "source IS NULL OR source IN ('digest')"
        )


def downgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_constraint("ck_interactions_source_valid", type_="check")
        batch_op.drop_column("source")
    with op.batch_alter_table("sent_digests", schema=None) as batch_op:
        batch_op.drop_index("ix_sent_digests_company_id")
    op.drop_table("sent_digests")
