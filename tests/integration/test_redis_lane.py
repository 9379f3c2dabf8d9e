"""The receiver's lane to Redis (:mod:`shared.redis_lane`) against a real server."""

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ResponseError

from shared import resp
from shared.redis_lane import RedisLane

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_a_call_on_a_connection_the_server_closed_is_retried_once_on_a_new_one(redis_url):
    client = AsyncRedis.from_url(redis_url)
    lane = RedisLane(client)
    other = Redis.from_url(redis_url)
    try:
        assert await lane.call(resp.command(["PING"])) == [b"PONG"]
        assert other.client_kill_filter(_type="normal", skipme=True) >= 1  # the lane's connection
        assert await lane.call(resp.command(["SET", "k", "v"])) == [b"OK"]
        assert other.get("k") == b"v"
    finally:
        await lane.close()
        await client.aclose()
        other.close()


async def test_an_error_reply_is_raised_and_the_lane_goes_on(redis_url):
    client = AsyncRedis.from_url(redis_url)
    lane = RedisLane(client)
    try:
        await lane.call(resp.command(["SET", "k", "text"]))
        with pytest.raises(ResponseError):
            await lane.call(resp.command(["INCR", "k"]))
        both = resp.command(["SET", "n", "1"]) + resp.command(["INCR", "n"])
        assert await lane.call(both, replies=2) == [b"OK", 2]
    finally:
        await lane.close()
        await client.aclose()
