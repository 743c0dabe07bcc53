"""redis-py against slotway-shard: the calls an ordinary application makes."""
import sys

import redis

port = int(sys.argv[1])
r = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)

assert r.ping()
assert r.set("user:1", "alice")
assert r.get("user:1") == "alice"
assert r.incr("visits") == 1
assert r.incrby("visits", 10) == 11
assert r.mset({"a": "1", "b": "2"})
assert r.mget("a", "b", "missing") == ["1", "2", None]
assert r.expire("a", 100)
assert 0 < r.ttl("a") <= 100
assert r.hset("h", mapping={"f1": "v1", "f2": "v2"}) == 2
assert r.hgetall("h") == {"f1": "v1", "f2": "v2"}
assert r.rpush("l", "x", "y", "z") == 3
assert r.lrange("l", 0, -1) == ["x", "y", "z"]
assert r.sadd("s", "a", "b") == 2
assert r.smembers("s") == {"a", "b"}
assert r.zadd("z", {"a": 1, "b": 2}) == 2
assert r.zrange("z", 0, -1, withscores=True) == [("a", 1.0), ("b", 2.0)]

pipe = r.pipeline(transaction=True)
pipe.set("t", "1").incr("t").get("t")
assert pipe.execute() == [True, 2, "2"]

with r.pipeline() as p:
    p.watch("w")
    p.multi()
    p.set("w", "1")
    assert p.execute() == [True]

try:
    r.lpush("user:1", "x")
    raise SystemExit("expected WRONGTYPE")
except redis.ResponseError as e:
    assert str(e).startswith("WRONGTYPE"), e

keys = set()
for k in r.scan_iter(match="user:*", count=10):
    keys.add(k)
assert keys == {"user:1"}, keys

info = r.info()
assert "redis_version" in info and "connected_clients" in info, info.keys()

r3 = redis.Redis(host="127.0.0.1", port=port, protocol=3, decode_responses=True)
assert r3.hgetall("h") == {"f1": "v1", "f2": "v2"}
assert r3.zscore("z", "b") == 2.0
print("ok")
