#!/usr/bin/env python3
"""Runs a command and writes what it cost to OUTFILE, one line:
"user_s sys_s wall_s peak_kib". CPU is to the microsecond, the kernel's
accounting of the finished child (wait4); GNU time prints centiseconds,
0.1 µs per log at 100 000 logs. The command runs under GNU time, whose
peak RSS is the command's own (Python's child would report Python's); GNU
time's own start, about a millisecond, is counted for every command alike.
  rusage.py OUTFILE COMMAND [ARG...]   (exits with the command's status)"""
import os, sys, tempfile, time

out, cmd = sys.argv[1], sys.argv[2:]
with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
    start = time.monotonic()
    # posix_spawn: the child shares Python's memory until it runs time
    # (no copy of it to count or to tear down).
    pid = os.posix_spawn("/usr/bin/time", ["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd], os.environ)
    _, status, ru = os.wait4(pid, 0)
    wall = time.monotonic() - start
    peak = (rss.read().split() or ["0"])[-1]
with open(out, "w") as f:
    f.write(f"{ru.ru_utime:.6f} {ru.ru_stime:.6f} {wall:.6f} {peak}\n")
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
