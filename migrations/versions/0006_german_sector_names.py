"""german sector names

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

The German title of every NACE Rev. 2 sector, from Destatis' WZ 2008 (see sectors/nace_de.tsv).

SQLite cannot rebuild `sectors` here: the copy-and-swap batch mode uses drops the table, and with
foreign keys enforced that fails as soon as a company, lead or mission links a sector (PRAGMA
foreign_keys cannot be switched off inside the migration's transaction). So every step is one that
SQLite does in place with ALTER TABLE: the column is added NOT NULL with an empty default, then filled.
"""

import sqlalchemy as sa
from alembic import op

from partnermatch.sectors.nace import load_german_titles

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sectors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name_de", sa.String(length=300), nullable=False, server_default=""))

    # One statement (CASE code WHEN ... THEN ...), so that `alembic upgrade --sql` can print it too.
    sectors = sa.table("sectors", sa.column("code", sa.String), sa.column("name_de", sa.String))
    titles = load_german_titles()
    op.execute(sectors.update().values(name_de=sa.case(titles, value=sectors.c.code, else_="")))
    if not op.get_context().as_sql:
        untitled = op.get_bind().scalars(sa.select(sectors.c.code).where(sectors.c.name_de == "")).all()
        if untitled:
            raise RuntimeError(
                f"sectors without a German title in nace_de.tsv: {', '.join(sorted(untitled))}"
            )

    # The default only bridged the rows that existed when the column came; the model has none. SQLite
    # keeps it, as dropping a default would need the rebuild described above.
    if op.get_context().dialect.name != "sqlite":
        with op.batch_alter_table("sectors", schema=None) as batch_op:
            batch_op.alter_column("name_de", existing_type=sa.String(length=300), server_default=None)


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN in place (SQLite 3.35+), not a rebuild, for the reason above.
    with op.batch_alter_table("sectors", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("name_de")
