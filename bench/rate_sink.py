#!/usr/bin/env python3
"""A TCP sink for bench/compare.sh's --rate runs: counts LF-framed messages
and, like rsyslog, closes its side of a connection when the
sender has closed its own (the agent's last confirmation waits for that).
  rate_sink.py PORTFILE   (the port is written to PORTFILE; after each
  connection, the total count of messages and of bytes to PORTFILE.count,
  "COUNT BYTES")"""
import os, socket, sys, threading

pf = sys.argv[1]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(16)
open(pf + ".tmp", "w").write(str(srv.getsockname()[1]))
os.rename(pf + ".tmp", pf)
count = [0]
total_bytes = [0]
lock = threading.Lock()


def serve(c):
    n = 0
    size = 0
    with c:
        while True:
            b = c.recv(1 << 20)
            if not b:
                break
            n += b.count(b"\n")
            size += len(b)
    with lock:
        count[0] += n
        total_bytes[0] += size
        open(pf + ".count.tmp", "w").write(f"{count[0]} {total_bytes[0]}")
        os.rename(pf + ".count.tmp", pf + ".count")


while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
    del conn  # the thread owns it: it closes when the sender is done
