from datetime import date, datetime
from uuid import UUID

from advanced_alchemy.base import DefaultBase, UUIDv7AuditBase
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from partnermatch.enums import LeadKind, LeadSource, LeadStatus, sql_in


class Lead(UUIDv7AuditBase):
    __tablename__ = "leads"
    __table_args__ = (
        CheckConstraint(sql_in("kind", LeadKind), name="kind_valid"),
        CheckConstraint(sql_in("status", LeadStatus), name="status_valid"),
        CheckConstraint(sql_in("source", LeadSource), name="source_valid"),
        CheckConstraint("budget_eur IS NULL OR budget_eur >= 0", name="budget_non_negative"),
        Index("ix_leads_status_deadline", "status", "deadline"),
        Index("ix_leads_city_kind", "city_id", "kind"),
        Index("ix_leads_published_at", "published_at"),
    )

    external_id: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    title: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(32))
    organization: Mapped[str] = mapped_column(String(300))
    city_id: Mapped[str] = mapped_column(ForeignKey("cities.id"))
    description: Mapped[str] = mapped_column(Text, default="")
    languages: Mapped[list[str]] = mapped_column(JsonB, default=list)
    budget_eur: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    published_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    deadline: Mapped[date | None] = mapped_column(Date, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=LeadStatus.OPEN.value)
    source: Mapped[str] = mapped_column(String(32), default=LeadSource.STAFF.value)

    sector_links: Mapped[list["LeadSector"]] = relationship(
        order_by="LeadSector.position", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def sectors(self) -> list[str]:
        return [link.code for link in self.sector_links]


class LeadSector(DefaultBase):
    __tablename__ = "lead_sectors"
    __table_args__ = (
        CheckConstraint("position BETWEEN 0 AND 4", name="position_range"),
        Index("ix_lead_sectors_code", "code"),
        Index("uq_lead_sectors_lead_code", "lead_id", "code", unique=True),
    )

    lead_id: Mapped[UUID] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    code: Mapped[str] = mapped_column(ForeignKey("sectors.code"))
