from datetime import datetime
from uuid import UUID

from advanced_alchemy.base import DefaultBase, UUIDv7AuditBase
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from partnermatch.enums import CompanyStatus, ExportExperience, sql_in


class Company(UUIDv7AuditBase):
    __tablename__ = "companies"
    __table_args__ = (
        CheckConstraint(sql_in("status", CompanyStatus), name="status_valid"),
        CheckConstraint(sql_in("export_experience", ExportExperience), name="export_experience_valid"),
        CheckConstraint("employees >= 1", name="employees_positive"),
        CheckConstraint("founded BETWEEN 1600 AND 2200", name="founded_plausible"),
        Index("ix_companies_status_name", "status", "name"),
        Index("ix_companies_registered_at", "registered_at"),
    )

    external_id: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    name: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), default=CompanyStatus.PENDING.value)
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    employees: Mapped[int] = mapped_column(Integer)
    founded: Mapped[int] = mapped_column(Integer)
    export_experience: Mapped[str] = mapped_column(String(16))
    languages: Mapped[list[str]] = mapped_column(JsonB, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    contact_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    website: Mapped[str | None] = mapped_column(String(500), nullable=True)
    registered_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))

    sector_links: Mapped[list["CompanySector"]] = relationship(
        order_by="CompanySector.position",
        cascade="all, delete-orphan",
        lazy="selectin",
    )
    target_city_links: Mapped[list["CompanyTargetCity"]] = relationship(
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="CompanyTargetCity.city_id",
    )

    @property
    def sectors(self) -> list[str]:
        return [link.code for link in self.sector_links]

    @property
    def target_cities(self) -> list[str]:
        return [link.city_id for link in self.target_city_links]


class CompanySector(DefaultBase):
    __tablename__ = "company_sectors"
    __table_args__ = (
        CheckConstraint("position BETWEEN 0 AND 4", name="position_range"),
        Index("ix_company_sectors_code", "code"),
        Index("uq_company_sectors_company_code", "company_id", "code", unique=True),
    )

    company_id: Mapped[UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    code: Mapped[str] = mapped_column(ForeignKey("sectors.code"))


class CompanyTargetCity(DefaultBase):
    __tablename__ = "company_target_cities"
    __table_args__ = (Index("ix_company_target_cities_city", "city_id"),)

    company_id: Mapped[UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True)
    city_id: Mapped[str] = mapped_column(ForeignKey("cities.id"), primary_key=True)
