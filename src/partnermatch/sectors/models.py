from advanced_alchemy.base import DefaultBase
from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

_LEVELS = "level IN ('section', 'division', 'group', 'class')"


class Sector(DefaultBase):
    """One NACE Rev. 2 entry; seeded by the first migration (German names by 0006), read-only afterwards."""

    __tablename__ = "sectors"
    __table_args__ = (
        CheckConstraint(_LEVELS, name="level_valid"),
        Index("ix_sectors_section", "section"),
        Index("ix_sectors_parent", "parent_code"),
    )

    code: Mapped[str] = mapped_column(String(5), primary_key=True)
    level: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(300))
    name_de: Mapped[str] = mapped_column(String(300))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("sectors.code"), nullable=True)
    section: Mapped[str] = mapped_column(String(1))
