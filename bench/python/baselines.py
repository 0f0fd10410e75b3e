"""The Python-call baselines of ffb-bench (bench/src/python.rs), measured
by the interpreter the bench passes (the project's .venv, for msgpack):

  in_process     operator.add(2, 3) called in this interpreter (a C function
                 through the C API's vectorcall), in blocks of 10,000
  multiprocessing  the same call in a multiprocessing child, arguments and
                 result pickled over a Pipe, one round trip per call
  msgpack_pipe   the same call in a subprocess speaking length-prefixed
                 MessagePack over its stdin and stdout

Prints one JSON object of median nanoseconds per call. Run with
`python baselines.py CALLS`.
"""
import json
import multiprocessing
import operator
import statistics
import struct
import subprocess
import sys
import time

CALLS = int(sys.argv[1]) if len(sys.argv) > 1 else 20000

CHILD = r"""
import msgpack, operator, struct, sys
inp, out = sys.stdin.buffer, sys.stdout.buffer
while True:
    head = inp.read(4)
    if len(head) < 4:
        break
    (n,) = struct.unpack("<I", head)
    a, b = msgpack.unpackb(inp.read(n))
    body = msgpack.packb(operator.add(a, b))
    out.write(struct.pack("<I", len(body)) + body)
    out.flush()
"""


def in_process():
    add = operator.add
    blocks = []
    for _ in range(max(5, CALLS // 10000)):
        t = time.perf_counter_ns()
        for _ in range(10000):
            add(2, 3)
        blocks.append((time.perf_counter_ns() - t) / 10000)
    return statistics.median(blocks)


def _echo(conn):
    while True:
        msg = conn.recv()
        if msg is None:
            return
        conn.send(operator.add(*msg))


def multiprocessing_pipe():
    here, there = multiprocessing.Pipe()
    child = multiprocessing.Process(target=_echo, args=(there,))
    child.start()
    samples = []
    for i in range(CALLS // 4 + 100):
        t = time.perf_counter_ns()
        here.send((2, 3))
        here.recv()
        if i >= 100:
            samples.append(time.perf_counter_ns() - t)
    here.send(None)
    child.join()
    return statistics.median(samples)


def msgpack_pipe():
    import msgpack

    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    body = msgpack.packb([2, 3])
    frame = struct.pack("<I", len(body)) + body
    samples = []
    for i in range(CALLS // 4 + 100):
        t = time.perf_counter_ns()
        child.stdin.write(frame)
        child.stdin.flush()
        (n,) = struct.unpack("<I", child.stdout.read(4))
        msgpack.unpackb(child.stdout.read(n))
        if i >= 100:
            samples.append(time.perf_counter_ns() - t)
    child.stdin.close()
    child.wait()
    return statistics.median(samples)


if __name__ == "__main__":
    print(json.dumps({
        "in_process": in_process(),
        "multiprocessing": multiprocessing_pipe(),
        "msgpack_pipe": msgpack_pipe(),
    }))
