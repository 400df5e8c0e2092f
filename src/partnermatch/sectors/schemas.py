from typing import Annotated

import msgspec


class SectorRead(msgspec.Struct):
    code: str
    level: str
    name: str
    name_de: Annotated[
        str,
        msgspec.Meta(
            description="German title, from Destatis' WZ 2008 (whose first four levels are NACE Rev. 2)"
        ),
    ]
    parent_code: str | None
    section: str
