from datetime import date, datetime
from uuid import UUID

from advanced_alchemy.base import DefaultBase, UUIDv7AuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from partnermatch.enums import MissionStatus, ParticipantStatus, sql_in


class Mission(UUIDv7AuditBase):
    __tablename__ = "missions"
    __table_args__ = (
        CheckConstraint(sql_in("status", MissionStatus), name="status_valid"),
        CheckConstraint("capacity >= 1", name="capacity_positive"),
        CheckConstraint("ends_on >= starts_on", name="ends_after_start"),
        Index("ix_missions_city_starts_on", "city_id", "starts_on"),
    )

    external_id: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    title: Mapped[str] = mapped_column(String(500))
    city_id: Mapped[str] = mapped_column(ForeignKey("cities.id"))
    description: Mapped[str] = mapped_column(Text, default="")
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    capacity: Mapped[int] = mapped_column(Integer)
    announced_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default=MissionStatus.PLANNED.value)

    sector_links: Mapped[list["MissionSector"]] = relationship(
        order_by="MissionSector.position", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def sectors(self) -> list[str]:
        return [link.code for link in self.sector_links]


class MissionSector(DefaultBase):
    __tablename__ = "mission_sectors"
    __table_args__ = (
        CheckConstraint("position BETWEEN 0 AND 9", name="position_range"),
        Index("ix_mission_sectors_code", "code"),
        Index("uq_mission_sectors_mission_code", "mission_id", "code", unique=True),
    )

    mission_id: Mapped[UUID] = mapped_column(ForeignKey("missions.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    code: Mapped[str] = mapped_column(ForeignKey("sectors.code"))


class MissionParticipant(UUIDv7AuditBase):
    """A company's current standing on a mission; one row per (mission, company)."""

    __tablename__ = "mission_participants"
    __table_args__ = (
        CheckConstraint(sql_in("status", ParticipantStatus), name="status_valid"),
        Index("uq_mission_participants_pair", "mission_id", "company_id", unique=True),
        Index("ix_mission_participants_company", "company_id"),
    )

    mission_id: Mapped[UUID] = mapped_column(ForeignKey("missions.id", ondelete="CASCADE"))
    company_id: Mapped[UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    status_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
