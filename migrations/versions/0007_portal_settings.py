"""portal settings

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

What the portal lets a member choose: the language of its pages (and of mail, later; none: the browser's
Accept-Language decides), how often the match digest comes, and when they agreed to it; and why a
company declined a lead, when it says so.

The columns are added in place (ALTER TABLE … ADD COLUMN, with their CHECK constraints inline, which
SQLite and PostgreSQL both accept): rebuilding `users` on SQLite would drop the table its sessions,
tokens and invitations refer to.

Stored recommendations keep their reasons as data from now on (a sentence key and its evidence, put into
words in the reader's language) instead of English sentences: the rows of the old form are deleted here.
They are a cache of the batch: `partnermatch recommendations refresh` (or `partnermatch demo`, which
stores them when the active model has none) computes them again, and until then every company is scored
on demand.
"""

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE users ADD COLUMN language VARCHAR(2) CONSTRAINT ck_users_language_valid "
        "CHECK (language IS NULL OR language IN ('de', 'en'))"
    )
    op.execute(
        "ALTER TABLE users ADD COLUMN digest_frequency VARCHAR(16) DEFAULT 'weekly' NOT NULL "
        "CONSTRAINT ck_users_digest_frequency_valid "
        "CHECK (digest_frequency IN ('weekly', 'fortnightly', 'monthly', 'never'))"
    )
    op.add_column("users", sa.Column("digest_consent_at", DateTimeUTC(timezone=True), nullable=True))
    op.execute(
        "ALTER TABLE interactions ADD COLUMN reason VARCHAR(24) CONSTRAINT ck_interactions_reason_valid "
        "CHECK (reason IS NULL OR reason IN "
        "('not_our_sector', 'wrong_city', 'too_small', 'too_large', 'no_capacity', 'other'))"
    )
    op.execute("DELETE FROM stored_recommendations")


def downgrade() -> None:
    # DROP COLUMN in place (SQLite 3.35 and later), for the reason given above.
    op.drop_column("interactions", "reason")
    op.drop_column("users", "digest_consent_at")
    op.drop_column("users", "digest_frequency")
    op.drop_column("users", "language")
    op.execute("DELETE FROM stored_recommendations")
