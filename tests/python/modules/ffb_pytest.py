"""Functions ffb's Python-helper tests call in the sandbox
(tests/tests/integration/python.rs), passed with --module-path."""
import os
import sys


def echo(value):
    return value


def describe(value):
    """repr() and the exact type names of a value, computed in the helper."""
    return repr(value)


def add(a, b):
    return a + b


def stdlib_c_extensions():
    """One answer from each of the standard library's C extensions."""
    import _json
    import _struct
    import decimal
    import json
    import sqlite3
    import struct
    import zlib

    db = sqlite3.connect(":memory:")
    db.execute("create table t(x)")
    db.executemany("insert into t values (?)", [(1,), (2,), (3,)])
    return {
        "zlib": zlib.decompress(zlib.compress(b"ffb" * 100)) == b"ffb" * 100,
        "sqlite": db.execute("select sum(x) from t").fetchone()[0],
        "json": json.loads('{"a": [1, 2.5, null]}'),
        "json_c": json.scanner.c_make_scanner is not None and _json is not None,
        "decimal": str(decimal.Decimal("1.10") + decimal.Decimal("2.205")),
        "decimal_c": decimal.__name__ == "decimal" and "_decimal" in sys.modules,
        "struct": struct.pack("<iH", -2, 7),
        "struct_c": _struct.calcsize("<iH"),
    }


def raise_value_error(message):
    raise ValueError(message)


def raise_system_exit(code):
    raise SystemExit(code)


def hard_exit(code):
    os._exit(code)


def read_file(path):
    with open(path, "rb") as f:
        return f.read(64)


def run_system(command):
    return os.system(command)


def run_subprocess(argv):
    import subprocess

    return subprocess.run(argv, capture_output=True).returncode


def open_socket():
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    return s.fileno()


def fork():
    return os.fork()


def ctypes_write(address):
    import ctypes

    ctypes.memset(address, 0x41, 16)
    return "written"


def import_module(name):
    __import__(name)
    return name


class Stubborn:
    """An object whose __repr__ and __del__ never return."""

    def __repr__(self):
        while True:
            pass

    def __del__(self):
        while True:
            pass


def stubborn():
    return Stubborn()


def pandas_groupby_sum():
    import pandas as pd

    df = pd.DataFrame({"k": ["a", "b", "a", "c"], "v": [1, 2, 3, 4]})
    return {k: int(v) for k, v in df.groupby("k")["v"].sum().items()}


def numpy_dot():
    import numpy as np

    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    return a.dot(a.T).tolist()


def pyarrow_table_rows():
    import pyarrow as pa

    t = pa.table({"x": [1, 2, 3], "s": ["a", None, "c"]})
    return t.num_rows, t.column("s").null_count


def psycopg2_query(dsn, sql):
    import psycopg2

    with psycopg2.connect(dsn) as conn:
        with conn.cursor() as cur:
            cur.execute(sql)
            return [list(row) for row in cur.fetchall()]


def handle_count():
    import _ffb

    return len(_ffb.handles)
