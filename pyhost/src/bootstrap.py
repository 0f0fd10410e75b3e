# The Python host's own module, `_ffb`: run once at init, before any module
# of the user's. It keeps the handle table and enforces the module
# allowlist at import time. Landlock is the real boundary (a module that is
# not granted cannot be read at all); this finder makes a refused import a
# clear ImportError naming the module instead of a confusing failure deeper
# down.
import sys
import traceback
from importlib.machinery import PathFinder

handles = {}
_allowed = frozenset()
_stdlib = []


class _Allowlist:
    """A meta path finder that refuses modules outside the allowlist."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in _allowed or top in sys.stdlib_module_names or top in sys.builtin_module_names:
            return None
        if path is None:
            # A module of the standard library's directories that the list
            # does not name (Debian's _sysconfigdata__x86_64-linux-gnu).
            spec = PathFinder.find_spec(name, _stdlib)
            if spec is not None:
                return spec
        raise ImportError(
            f"module {top!r} is not allowed in this sandbox (allow it with --allow-module {top})",
            name=name,
        )


def install(allowed, stdlib):
    global _allowed, _stdlib
    _allowed = frozenset(allowed)
    _stdlib = list(stdlib)
    sys.meta_path.insert(0, _Allowlist)


def _cut(text, limit):
    if not isinstance(text, str):
        return "<unprintable>"
    data = text.encode("utf-8", "backslashreplace")
    if len(data) <= limit:
        return data.decode("utf-8")
    return data[:limit].decode("utf-8", "ignore") + " [cut]"


def describe(exc, limit):
    """(type name, message, traceback) of an exception, each bounded."""
    kind = type(exc)
    try:
        name = f"{kind.__module__}.{kind.__qualname__}"
        if kind.__module__ == "builtins":
            name = kind.__qualname__
    except Exception:
        name = "<unnamed exception>"
    try:
        message = str(exc)
    except BaseException:
        message = "<unprintable>"
    try:
        text = "".join(traceback.format_exception(exc))
    except BaseException:
        text = "<traceback unavailable>"
    return _cut(name, limit), _cut(message, limit), _cut(text, limit)
