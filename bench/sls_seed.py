#!/usr/bin/env python3
"""The seed program's approach (seed 001, the Alibaba community article on
shipping Log Service logs to a SIEM over syslog), for bench/sls.sh: the
official SDK's ConsumerWorker, each batch flattened with the SDK's helper,
each log written as `||key=value` pairs (nothing escaped) in an RFC 5424
message whose time is the log's `__time__`, sent over TCP with
pysyslogclient (a new client per batch, as the seed does), then the
checkpoint saved. Configured as the seed is, by its environment variables
(SLS_ENDPOINT, SLS_AK_ID, SLS_AK_KEY, SLS_PROJECT, SLS_LOGSTORE, SLS_CG,
SYSLOG_HOST, SYSLOG_PORT).

One change, so that a benchmark ends: the seed runs forever; this stops
once BENCH_LOGS logs were sent (the worker then saves its checkpoints and
stops, as on Ctrl+C).
"""
import os
import threading
import time
from datetime import datetime

from aliyun.log import PullLogResponse
from aliyun.log.consumer import (ConsumerProcessorBase, ConsumerWorker,
                                 CursorPosition, LogHubConfig)
from pysyslogclient import SyslogClientRFC5424 as SyslogClient

SENT = [0]
LOCK = threading.Lock()


class SyncData(ConsumerProcessorBase):
    def __init__(self, settings):
        super().__init__()
        self.host, self.port = settings["host"], settings["port"]
        self.sep = settings["sep"]
        self.option = settings

    def process(self, log_groups, check_point_tracker):
        logs = PullLogResponse.loggroups_to_flattern_list(log_groups, time_as_str=True,
                                                          decode_bytes=True)
        client = SyslogClient(self.host, self.port, proto="tcp")
        for log in logs:
            timestamp = datetime.fromtimestamp(int(log["__time__"]))
            del log["__time__"]
            data = "".join("{0}{1}={2}".format(self.sep, k, v) for k, v in log.items())
            client.log(data, facility=1, severity=6, timestamp=timestamp,
                       program="tag", hostname="aliyun.example.com")
        with LOCK:
            SENT[0] += len(logs)
        self.save_checkpoint(check_point_tracker)


def main():
    env = os.environ
    option = LogHubConfig(env["SLS_ENDPOINT"], env["SLS_AK_ID"], env["SLS_AK_KEY"],
                          env["SLS_PROJECT"], env["SLS_LOGSTORE"], env["SLS_CG"],
                          "{0}-{1}".format(env["SLS_CG"], os.getpid()),
                          cursor_position=CursorPosition.BEGIN_CURSOR,
                          heartbeat_interval=20, data_fetch_interval=1)
    settings = {"host": env["SYSLOG_HOST"], "port": int(env["SYSLOG_PORT"]), "sep": "||"}
    want = int(env["BENCH_LOGS"])
    worker = ConsumerWorker(SyncData, option, args=(settings,))
    worker.start()
    while True:
        with LOCK:
            if SENT[0] >= want:
                break
        time.sleep(0.05)  # the benchmark's end, not a synchronisation
    worker.shutdown()
    worker.join()


if __name__ == "__main__":
    main()
