#!/usr/bin/env python3
"""The vendor's own client against the agent's Log Service simulator.

Runs the official Python SDK (aliyun-log-python-sdk, pinned in
requirements.txt) against `siem-agent simulate --vendor sls`: a simulator
the real client accepts is the proof that the agent's source speaks the
real protocol (signature v1, protobuf, LZ4, cursors, consumer groups).

The SDK connects to `<project>.<endpoint>`; to reach 127.0.0.1 without a
name server it goes through the simulator as an HTTP proxy: the caller
sets HTTP_PROXY=http://127.0.0.1:PORT (the SDK's HTTP library honours it;
nothing in the SDK is changed), and the simulator serves requests in
proxy form, routing by Host (`<project>.127.0.0.1`) as the service does.

  sls_sdk.py --port P --project P --logstore L --key-id I --key-secret S --events N
Exits 0 when every check holds; else 1 with one line saying which failed.
"""
import argparse
import sys
import threading
import time

from aliyun.log import LogClient, LogException
from aliyun.log.consumer import (ConsumerProcessorBase, ConsumerWorker,
                                 CursorPosition, LogHubConfig)


def fail(msg):
    print(f"sls_sdk.py: FAIL: {msg}", flush=True)
    sys.exit(1)


def ids_of(logs):
    return [log.get("_id") for log in logs]


def pull_everything(client, a):
    """Every shard from begin to end with get_cursor and pull_logs."""
    shards = client.list_shards(a.project, a.logstore).get_shards_info()
    if not shards:
        fail("list_shards named no shard")
    seen = []
    for shard in shards:
        sid = shard["shardID"]
        cursor = client.get_cursor(a.project, a.logstore, sid, "begin").get_cursor()
        end = client.get_cursor(a.project, a.logstore, sid, "end").get_cursor()
        while True:
            res = client.pull_logs(a.project, a.logstore, sid, cursor, count=100,
                                   end_cursor=end)
            seen.extend(ids_of(res.get_flatten_logs_json(time_as_str=True, decode_bytes=True)))
            nxt = res.get_next_cursor()
            if res.get_log_count() == 0 or nxt == cursor or nxt == end:
                break
            cursor = nxt
    return shards, seen


def check_once(seen, n, what):
    want = {f"sls-{i:08d}" for i in range(n)}
    got = set(seen)
    if len(seen) != len(got):
        fail(f"{what}: {len(seen) - len(got)} logs came twice")
    if got != want:
        missing = sorted(want - got)[:3]
        extra = sorted(got - want)[:3]
        fail(f"{what}: {len(got)} of {n} logs (missing {missing}, unexpected {extra})")


class Collect(ConsumerProcessorBase):
    """Keeps every log's _id; saves a checkpoint after each batch, as the
    seed program does."""

    seen = []
    taken = []
    lock = threading.Lock()

    def initialize(self, shard):
        super().initialize(shard)
        with Collect.lock:
            Collect.taken.append(shard)

    def process(self, log_groups, check_point_tracker):
        from aliyun.log import PullLogResponse
        logs = PullLogResponse.loggroups_to_flattern_list(log_groups, time_as_str=True,
                                                          decode_bytes=True)
        with Collect.lock:
            Collect.seen.extend(ids_of(logs))
        # Persisted at once (force), so that the next worker starts where
        # this one stopped.
        self.save_checkpoint(check_point_tracker, force=True)


def consume(a, consumer, until, timeout):
    """A ConsumerWorker of group a.group as `consumer`; runs until
    until() holds or `timeout` seconds pass. Returns the ids it saw."""
    Collect.seen = []
    Collect.taken = []
    option = LogHubConfig(f"127.0.0.1:{a.port}", a.key_id, a.key_secret, a.project,
                          a.logstore, a.group, consumer,
                          cursor_position=CursorPosition.BEGIN_CURSOR,
                          heartbeat_interval=1, data_fetch_interval=0.1)
    worker = ConsumerWorker(Collect, option)
    worker.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until():
        time.sleep(0.2)  # polling the worker's progress, not a synchronisation
    worker.shutdown()
    # The worker saves its last checkpoints and stops its shards on its
    # own thread: waited for, so that nothing of it is cut at exit.
    worker.join(timeout=60)
    if worker.is_alive():
        fail(f"{consumer} did not stop within 60 s")
    with Collect.lock:
        return list(Collect.seen)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--project", required=True)
    p.add_argument("--logstore", required=True)
    p.add_argument("--key-id", required=True)
    p.add_argument("--key-secret", required=True)
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--group", default="sdk-group")
    a = p.parse_args()
    endpoint = f"127.0.0.1:{a.port}"

    client = LogClient(endpoint, a.key_id, a.key_secret)
    shards, seen = pull_everything(client, a)
    check_once(seen, a.events, "pull_logs from begin to end")
    print(f"sls_sdk.py: list_shards: {len(shards)} shards; pull_logs: {len(seen)} logs, each once",
          flush=True)

    bad = LogClient(endpoint, a.key_id, a.key_secret + "x")
    try:
        bad.list_shards(a.project, a.logstore)
        fail("a wrong secret was accepted")
    except LogException as e:
        if e.get_error_code() != "SignatureNotMatch":
            fail(f"a wrong secret: {e.get_error_code()}, not SignatureNotMatch")
    print("sls_sdk.py: a wrong secret: SignatureNotMatch", flush=True)

    want = {f"sls-{i:08d}" for i in range(a.events)}
    first = consume(a, "sdk-worker-1", lambda: want <= set(Collect.seen), 60)
    check_once(first, a.events, "the first consumer-group worker")
    print(f"sls_sdk.py: ConsumerWorker: {len(first)} logs, each once, checkpoints saved",
          flush=True)
    # A second worker of the group resumes from the checkpoints: it gets
    # the shards once the first has let them go, and nothing already read.
    second = consume(a, "sdk-worker-2", lambda: len(Collect.taken) == len(shards), 30)
    if len(Collect.taken) != len(shards):
        fail(f"the second worker was given shards {Collect.taken} of {len(shards)}")
    if second:
        fail(f"the second worker read {len(second)} logs again ({second[:3]})")
    checkpoints = client.get_check_point(a.project, a.logstore, a.group).get_consumer_group_check_points()
    if len(checkpoints) != len(shards) or any(not c.get("checkpoint") for c in checkpoints):
        fail(f"the group's checkpoints: {checkpoints}")
    print("sls_sdk.py: a second ConsumerWorker resumed from the checkpoints: nothing repeated",
          flush=True)


if __name__ == "__main__":
    main()
