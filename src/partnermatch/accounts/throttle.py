"""Failed logins counted per account in a Litestar store (memory, or Redis shared by all workers:
auth.rate_limit_stores); Litestar's RateLimitConfig covers per IP."""

import hashlib

from litestar.stores.base import Store
from litestar.stores.redis import RedisStore

WINDOW_SECONDS = 15 * 60


class LoginThrottle:
    def __init__(self, store: Store, limit: int) -> None:
        self.store = store
        self.limit = limit

    @staticmethod
    def _key(email: str) -> str:
        # Keys only; no addresses in the store.
        return "login-failures:" + hashlib.sha256(email.encode()).hexdigest()

    async def retry_after(self, email: str) -> int | None:
        """Seconds until the account may try again, or None if it may now."""
        key = self._key(email)
        value = await self.store.get(key)
        if value is None or int(value) < self.limit:
            return None
        return await self.store.expires_in(key) or WINDOW_SECONDS

    async def failed(self, email: str) -> None:
        key = self._key(email)
        if isinstance(self.store, RedisStore):
            await _failed_in_redis(self.store, key)
            return
        # In memory the counter is one process's; two failures racing in it may rarely count as one.
        value = await self.store.get(key)
        if value is None:
            await self.store.set(key, b"1", expires_in=WINDOW_SECONDS)
            return
        # A fixed window: further failures do not extend it.
        remaining = await self.store.expires_in(key) or WINDOW_SECONDS
        await self.store.set(key, str(int(value) + 1).encode(), expires_in=remaining)

    async def succeeded(self, email: str) -> None:
        await self.store.delete(self._key(email))


async def _failed_in_redis(store: RedisStore, key: str) -> None:
    # Workers share the counter: a get-then-set would let concurrent failures on several workers
    # overwrite each other's counts. One transaction creates the key with the window as its
    # lifetime if it is new (a fixed window: later failures keep the expiry) and increments it.
    # The Store interface has no increment, hence the store's own client and key.
    redis_key = store._make_key(key)
    async with store._redis.pipeline(transaction=True) as pipeline:
        pipeline.set(redis_key, 0, ex=WINDOW_SECONDS, nx=True)
        pipeline.incr(redis_key)
        await pipeline.execute()
