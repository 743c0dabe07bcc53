"""redis-py's plain redis.Redis against slotway: one address, any key."""
import sys

import redis

from protocols import run_each_protocol

port = int(sys.argv[1])


def check(proto):
    kw = {} if proto is None else {"protocol": proto}
    r = redis.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=10, **kw)
    # A second run (the other protocol) starts from an empty cluster too.
    assert r.flushall()

    assert r.ping()
    assert r.set("name", "lqz")
    assert r.get("name") == "lqz"

    keys = [f"py:{i}" for i in range(1000)]
    for i, k in enumerate(keys):
        assert r.set(k, f"v{i}"), k
    for i, k in enumerate(keys):
        got = r.get(k)
        assert got == f"v{i}", (k, got)

    # A non-transactional pipeline: replies in order across nodes.
    pipe = r.pipeline(transaction=False)
    for i, k in enumerate(keys):
        pipe.set(k, f"p{i}")
        pipe.get(k)
        pipe.incr(f"cnt:{i % 7}")
    out = pipe.execute()
    assert len(out) == 3000, len(out)
    for i in range(1000):
        assert out[3 * i] is True, (i, out[3 * i])
        assert out[3 * i + 1] == f"p{i}", (i, out[3 * i + 1])
    counts = {}
    for i in range(1000):
        c = i % 7
        counts[c] = counts.get(c, 0) + 1
        assert out[3 * i + 2] == counts[c], (i, out[3 * i + 2])

    # MGET across every slot keeps argument order, None for missing keys.
    wanted = keys[::-1] + ["py:missing"]
    got = r.mget(wanted)
    assert got == [f"p{int(k.split(':')[1])}" for k in keys[::-1]] + [None], got[:5]
    assert r.mset({"ma": "1", "mb": "2", "mc": "3"})
    assert r.mget("mc", "ma", "mb") == ["3", "1", "2"]
    assert r.delete("ma", "mb", "mc", "nosuch") == 3
    assert r.exists(*keys[:10]) == 10

    assert r.hset("h", mapping={"f1": "v1", "f2": "v2"}) == 2
    assert r.hgetall("h") == {"f1": "v1", "f2": "v2"}
    assert r.rpush("l", "x", "y") == 2
    assert r.lrange("l", 0, -1) == ["x", "y"]
    assert r.expire("name", 100)
    assert 0 < r.ttl("name") <= 100
    assert r.dbsize() == 1000 + 7 + 1 + 2, r.dbsize()
    try:
        r.execute_command("NOSUCHCMD")
        raise AssertionError("unknown command accepted")
    except redis.ResponseError as e:
        assert "unknown command" in str(e), e


run_each_protocol(check)
