# Start times at many partitions: create TOPICS x 20 (250 a request), stop
# cleanly, start (clean), SIGKILL, start (after the kill), stop.
# Used by docs/BENCHMARKS.md ("Partitions opened on first use"):
#   python3 benches/start-partitions.py BIN DATA_DIR TOPICS  (DATA_DIR must not exist)
import os, signal, subprocess, sys, time
from confluent_kafka.admin import AdminClient, NewTopic

BIN, DATA, TOPICS = sys.argv[1], sys.argv[2], int(sys.argv[3])

def start():
    t0 = time.monotonic()
    p = subprocess.Popen([BIN, "serve", "--data-dir", DATA, "--listen", "127.0.0.1:0"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in p.stdout:
        if line.startswith("listening on "):
            return p, line.split()[-1], time.monotonic() - t0
    raise SystemExit("no listening line")

def proc(p):
    rss = [l for l in open(f"/proc/{p.pid}/status") if l.startswith("VmRSS")][0].split()[1]
    fds = len(os.listdir(f"/proc/{p.pid}/fd"))
    maps = sum(1 for _ in open(f"/proc/{p.pid}/maps"))
    return f"RSS {int(rss)/1024:.1f} MiB, descriptors {fds}, maps {maps}"

def metadata(addr):
    a = AdminClient({"bootstrap.servers": addr})
    t0 = time.monotonic()
    md = a.list_topics(timeout=120)
    n = sum(len(t.partitions) for t in md.topics.values())
    return f"{time.monotonic()-t0:.2f} s, {len(md.topics)} topics, {n} partitions"

def stop(p):
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    p.wait()
    return time.monotonic() - t0

p, addr, t = start()
print(f"| start, empty directory | {t:.2f} s |")
a = AdminClient({"bootstrap.servers": addr})
t0 = time.monotonic()
slowest = 0
for i in range(0, TOPICS, 250):
    t1 = time.monotonic()
    fs = a.create_topics([NewTopic(f"t{j:05}", 20, 1) for j in range(i, min(TOPICS, i + 250))],
                         operation_timeout=300, request_timeout=300)
    for f in fs.values():
        f.result()
    slowest = max(slowest, time.monotonic() - t1)
print(f"| create {TOPICS} topics x 20 (250 a request) | {time.monotonic()-t0:.1f} s (slowest request {slowest:.1f} s) |", flush=True)
print(f"| after creation | {proc(p)} |")
print(f"| clean stop | {stop(p):.1f} s |", flush=True)
p, addr, t = start()
print(f"| clean start: listening | {t:.2f} s |")
print(f"| clean start: Metadata of all topics | {metadata(addr)} |")
time.sleep(1)
print(f"| after clean start (idle) | {proc(p)} |", flush=True)
p.kill(); p.wait()
p, addr, t = start()
print(f"| start after SIGKILL (nothing written since the clean start) | {t:.2f} s |")
print(f"| then Metadata of all topics | {metadata(addr)} |")
print(f"| after that start (idle) | {proc(p)} |", flush=True)
p.kill(); p.wait()
p, addr, t = start()
print(f"| second start after SIGKILL in a row | {t:.2f} s |", flush=True)
print(f"| stop | {stop(p):.1f} s |")
