"""redis-py's RedisCluster against a cluster of slotway-shard nodes: it
discovers the slots with CLUSTER SLOTS, learns key positions from
COMMAND, and routes, splits and follows redirections by itself."""
import sys

from redis.cluster import RedisCluster

port = int(sys.argv[1])
rc = RedisCluster(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=10)

masters = rc.get_primaries()
assert len(masters) == 3, [n.name for n in masters]
assert len(rc.get_replicas()) == 3, [n.name for n in rc.get_replicas()]

for i in range(300):
    assert rc.set(f"py:{i}", str(i))
assert [rc.get(f"py:{i}") for i in range(300)] == [str(i) for i in range(300)]
# MGET over many slots: mget_nonatomic splits it per slot and reassembles.
assert rc.mget_nonatomic([f"py:{i}" for i in range(0, 300, 7)]) == [str(i) for i in range(0, 300, 7)]
total = rc.dbsize(target_nodes=RedisCluster.PRIMARIES)
total = sum(total.values()) if isinstance(total, dict) else total
assert total >= 300, total
# Hash tags keep a transaction on one node.
with rc.pipeline(transaction=False) as p:
    p.incr("{acct}:a")
    p.incr("{acct}:b")
    assert p.execute() == [1, 1]
assert rc.keyslot("hello") == 866
assert rc.cluster_keyslot("hello") == 866
print("ok")
