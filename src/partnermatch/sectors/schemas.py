import msgspec


class SectorRead(msgspec.Struct):
    code: str
    level: str
    name: str
    parent_code: str | None
    section: str
