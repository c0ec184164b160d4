#!/usr/bin/env python3
"""Where Herald's loop thread spends its time, by gdb stack sampling (perf does not sample
on this machine kind; callgrind crashes on the Swift binary).

Usage: scripts/profile-loop.py PID [--samples 40] [--interval 0.1] [--top 10]

Takes --samples stacks of every thread of PID with gdb, keeps the thread that runs the
service loop (ServiceLoop.run), and prints the share of samples spent idle (in epoll_wait or
poll with nothing ready), the top functions by self samples, and the top Herald/lws
functions by inclusive samples (demangled with swift-demangle when available).
"""
import argparse
import collections
import re
import shutil
import subprocess
import time

parser = argparse.ArgumentParser()
parser.add_argument("pid", type=int)
parser.add_argument("--samples", type=int, default=40)
parser.add_argument("--interval", type=float, default=0.1)
parser.add_argument("--top", type=int, default=10)
options = parser.parse_args()

stacks = []
for _ in range(options.samples):
    out = subprocess.run(["gdb", "-p", str(options.pid), "-batch", "-ex", "thread apply all bt"],
                         capture_output=True, text=True, timeout=60).stdout
    for thread in re.split(r"\nThread ", out):
        if "ServiceLoop" not in thread:
            continue
        frames = []
        for line in thread.splitlines():
            match = re.match(r"#\d+\s+(?:0x[0-9a-f]+ in )?(\S+)", line)
            if match:
                frames.append(match.group(1))
        stacks.append(frames)
    time.sleep(options.interval)

demangler = shutil.which("swift-demangle")


def pretty(names):
    if not demangler:
        return names
    out = subprocess.run([demangler, "--simplified", "--compact"], input="\n".join(names), capture_output=True,
                         text=True).stdout.splitlines()
    return [o[:140] for o in out] if len(out) == len(names) else names


idle = [s for s in stacks if s and s[0] in ("epoll_wait", "__GI_epoll_wait", "poll", "__GI___poll")
        and not any("heraldCallback" in f for f in s)]
busy = [s for s in stacks if s not in idle]
print(f"{len(stacks)} samples of the loop thread: {len(idle)} idle (waiting), {len(busy)} busy")
selfs = collections.Counter(s[0] for s in busy if s)
inclusive = collections.Counter(f for s in busy for f in set(s)
                                if ("Herald" in f or f.startswith("lws_") or f.startswith("_lws") or "send" in f
                                    or "recv" in f or "epoll" in f or f == "poll"))
for title, counter in (("self", selfs), ("inclusive (Herald, lws, syscalls)", inclusive)):
    print(f"-- top {options.top} by {title} samples (% of busy)")
    top = counter.most_common(options.top)
    for (name, count), label in zip(top, pretty([n for n, _ in top])):
        print(f"{100 * count / max(len(busy), 1):5.1f} %  {label}")
