"""redis-py's cluster client pointed at slotway: the proxy must look like a
cluster of one node that owns all 16384 slots."""
import sys

import redis

from protocols import run_each_protocol
from redis.cluster import RedisCluster

port = int(sys.argv[1])


def check(proto):
    kw = {} if proto is None else {"protocol": proto}
    rc = RedisCluster(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=10, **kw)
    # A second run (the other protocol) starts from an empty cluster too.
    assert rc.flushall()

    nodes = rc.get_nodes()
    assert len(nodes) == 1, [n.name for n in nodes]
    assert nodes[0].port == port, nodes[0].name
    for slot in (0, 5000, 12182, 16383):
        node = rc.nodes_manager.get_node_from_slot(slot)
        assert node.port == port, (slot, node.name)

    assert rc.ping()
    keys = [f"rc:{i}" for i in range(500)]
    for i, k in enumerate(keys):
        assert rc.set(k, str(i)), k
    for i, k in enumerate(keys):
        assert rc.get(k) == str(i), k
    assert rc.get("rc:missing") is None

    pipe = rc.pipeline()
    for k in keys[:100]:
        pipe.incr(k)
    assert pipe.execute() == [i + 1 for i in range(100)]

    assert rc.mget_nonatomic(keys[:50]) == [str(i + 1) for i in range(50)]
    assert rc.mset_nonatomic({"{u}a": "1", "{u}b": "2"})
    assert rc.mget("{u}a", "{u}b") == ["1", "2"]
    assert rc.delete(*keys[:20]) == 20
    assert rc.exists(*keys[:40]) == 20


run_each_protocol(check)
