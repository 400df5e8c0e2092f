from advanced_alchemy.base import DefaultBase
from advanced_alchemy.types import JsonB
from sqlalchemy import CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from partnermatch.enums import CityStatus, sql_in


class City(DefaultBase):
    __tablename__ = "cities"
    __table_args__ = (
        CheckConstraint(sql_in("status", CityStatus), name="status_valid"),
        CheckConstraint("length(country) = 2", name="country_alpha2"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    languages: Mapped[list[str]] = mapped_column(JsonB, default=list)
    partner_since: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=CityStatus.ACTIVE.value, index=True)
