"""redis-py pub/sub and transactions against slotway-shard."""
import sys
import threading
import time

import redis

port = int(sys.argv[1])
# RESP2 explicitly: the subscribed-mode protocol redis-py has always used.
r = redis.Redis(host="127.0.0.1", port=port, decode_responses=True, protocol=2)

p = r.pubsub()
p.subscribe("news")
p.psubscribe("n*")
assert p.get_message(timeout=2) == {"type": "subscribe", "pattern": None, "channel": "news", "data": 1}
assert p.get_message(timeout=2) == {"type": "psubscribe", "pattern": None, "channel": "n*", "data": 2}
assert r.publish("news", "hello") == 2
assert p.get_message(timeout=2) == {"type": "message", "pattern": None, "channel": "news", "data": "hello"}
assert p.get_message(timeout=2) == {"type": "pmessage", "pattern": "n*", "channel": "news", "data": "hello"}
assert r.pubsub_numsub("news") == [("news", 1)]
assert r.pubsub_numpat() == 1
assert r.pubsub_channels() == ["news"]

got = []


def handler(msg):
    got.append(msg["data"])


p2 = r.pubsub(ignore_subscribe_messages=True)
p2.subscribe(**{"events": handler})
worker = p2.run_in_thread(sleep_time=0.01)
time.sleep(0.1)
for i in range(100):
    r.publish("events", str(i))
deadline = time.time() + 5
while len(got) < 100 and time.time() < deadline:
    time.sleep(0.01)
worker.stop()
worker.join(2)
assert got == [str(i) for i in range(100)], got

p.unsubscribe()
p.punsubscribe()
kinds = set()
for _ in range(2):
    m = p.get_message(timeout=2)
    kinds.add(m["type"])
assert kinds == {"unsubscribe", "punsubscribe"}, kinds
p.close()

pipe = r.pipeline(transaction=True)
pipe.set("t", "1").get("t").set("u", "2")
assert pipe.execute() == [True, "1", True]

# WATCH aborted by another client's write: redis-py raises WatchError.
other = redis.Redis(host="127.0.0.1", port=port, decode_responses=True, protocol=2)
with r.pipeline() as pw:
    pw.watch("t")
    other.set("t", "changed")
    pw.multi()
    pw.set("t", "mine")
    try:
        pw.execute()
        raise SystemExit("expected WatchError")
    except redis.WatchError:
        pass
assert r.get("t") == "changed"

# A queueing error aborts the whole transaction.
pipe = r.pipeline(transaction=True)
pipe.set("v", "1")
pipe.execute_command("SET", "v")
try:
    pipe.execute()
    raise SystemExit("expected an error")
except redis.ResponseError as e:
    assert "wrong number of arguments" in str(e) or "EXECABORT" in str(e), e
assert r.get("v") is None

# RESP3: messages arrive as push frames (only where HELLO 3 is served).
r3 = redis.Redis(host="127.0.0.1", port=port, decode_responses=True, protocol=3)
try:
    r3.ping()
    resp3 = True
except redis.ResponseError:
    resp3 = False
if resp3:
    p3 = r3.pubsub()
    p3.subscribe("three")
    assert p3.get_message(timeout=2)["type"] == "subscribe"
    assert r.publish("three", "m") == 1
    m = p3.get_message(timeout=2)
    assert m["type"] == "message" and m["data"] == "m", m
    p3.close()
print("ok")
