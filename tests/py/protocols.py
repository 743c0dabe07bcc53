"""Runs a redis-py check under RESP2 and under the client's default
protocol (RESP3 from redis-py 8 on, sent as HELLO 3 at connect): both must
work through the proxy."""
import redis


def run_each_protocol(check):
    try:
        redis.Redis(protocol=2)
        protocols = [2, None]
    except TypeError:  # redis-py before 5 has no protocol argument: RESP2 only
        protocols = [None]
    for proto in protocols:
        try:
            check(proto)
        except Exception as e:
            name = "the default protocol" if proto is None else f"protocol={proto}"
            raise AssertionError(f"with {name} (redis-py {redis.__version__}): {e!r}") from e
    print("ok")
