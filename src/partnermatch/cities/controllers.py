from litestar import Controller, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch.access import Access, access
from partnermatch.cities.schemas import CityCreate, CityRead, CityUpdate
from partnermatch.cities.service import CityService
from partnermatch.mapping import read_as


async def provide_city_service(db_session: NamedDependency[AsyncSession]) -> CityService:
    return CityService(session=db_session)


class CityController(Controller):
    path = "/api/v1/cities"
    tags = ["reference data"]
    # Reading the partner cities is public; changing them is for staff.
    opt = access(Access.STAFF)
    dependencies = {"cities": Provide(provide_city_service)}

    @get("/", summary="Berlin's partner cities", opt=access(Access.PUBLIC))
    async def list_cities(self, cities: NamedDependency[CityService]) -> list[CityRead]:
        return [read_as(city, CityRead) for city in await cities.list_cities()]

    @get("/{city_id:str}", summary="One partner city", opt=access(Access.PUBLIC))
    async def get_city(self, cities: NamedDependency[CityService], city_id: FromPath[str]) -> CityRead:
        return read_as(await cities.get_city(city_id), CityRead)

    @post("/", summary="Add a partner city")
    async def create_city(self, cities: NamedDependency[CityService], data: JSONBody[CityCreate]) -> CityRead:
        return read_as(await cities.create_city(data), CityRead)

    @patch("/{city_id:str}", summary="Change a partner city (name, languages, status)")
    async def update_city(
        self, cities: NamedDependency[CityService], city_id: FromPath[str], data: JSONBody[CityUpdate]
    ) -> CityRead:
        return read_as(await cities.update_city(city_id, data), CityRead)
