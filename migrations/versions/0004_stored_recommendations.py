"""stored recommendations

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

Each company's top leads computed in batch by a model version, served without scoring on demand.
"""

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stored_recommendations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("model_version_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("company_id", GUID(length=16), nullable=False),
        sa.Column("lead_id", GUID(length=16), nullable=False),
        sa.Column("ranking_score", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("reasons", JsonB, nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("computed_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint(
            "score >= 0 AND score <= 1", name=op.f("ck_stored_recommendations_score_probability")
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_stored_recommendations_model_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_stored_recommendations_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_stored_recommendations_lead_id_leads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stored_recommendations")),
    )
    with op.batch_alter_table("stored_recommendations", schema=None) as batch_op:
        batch_op.create_index(
            "uq_stored_recommendations_pair", ["model_version_id", "company_id", "lead_id"], unique=True
        )
        batch_op.create_index(
            "ix_stored_recommendations_company", ["company_id", "model_version_id"], unique=False
        )
        batch_op.create_index("ix_stored_recommendations_lead", ["lead_id"], unique=False)


def downgrade() -> None:
    op.drop_table("stored_recommendations")
