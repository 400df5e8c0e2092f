"""background jobs

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

`failed_jobs` keeps the jobs that failed at every attempt, with their arguments and error, for staff;
`scheduled_runs` holds one row per run of a scheduled job, its claim (partnermatch.background).
"""

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "failed_jobs",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("arguments", JsonB, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("failed_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_failed_jobs")),
    )
    with op.batch_alter_table("failed_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_failed_jobs_failed_at", ["failed_at"], unique=False)

    op.create_table(
        "scheduled_runs",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("slot", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("claimed_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("finished_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("outcome", JsonB, nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_runs")),
        sa.UniqueConstraint("name", "slot", name=op.f("uq_scheduled_runs_name")),
    )


def downgrade() -> None:
    op.drop_table("scheduled_runs")
    with op.batch_alter_table("failed_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_failed_jobs_failed_at")
    op.drop_table("failed_jobs")
