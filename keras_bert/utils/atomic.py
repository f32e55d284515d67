"""Crash-safe writes: build under a temporary name, then rename into place."""

import contextlib
import json
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_file(path, suffix=""):
    """Yields a temporary path beside `path`; renames it to `path` on success.

    A crash before the rename leaves `path` as it was. `suffix` keeps an
    extension that some writers insist on (e.g. `.weights.h5`). The file gets
    the usual permissions (`0666` less the umask), not `mkstemp`'s `0600`.
    """
    directory = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(directory, exist_ok=True)
    fd, temporary = tempfile.mkstemp(
        prefix="." + os.path.basename(path) + ".tmp-", suffix=suffix, dir=directory
    )
    os.close(fd)
    # `mkstemp` creates 0600: give the file the permissions `open` would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_json(path, value, **dump_options):
    """Writes `value` as JSON (UTF-8, ending in a newline) to `path` through `atomic_file`.

    `dump_options` go to `json.dump` (`indent`, `sort_keys`, `default`, ...).
    """
    with atomic_file(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(value, f, **dump_options)
            f.write("\n")


@contextlib.contextmanager
def atomic_directory(path):
    """Yields a temporary directory beside `path`; swaps it in on success.

    An existing `path` is replaced only after the new directory is complete.
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    temporary = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".tmp-", dir=parent)
    try:
        yield temporary
        if os.path.exists(path):
            retired = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".old-", dir=parent)
            os.rmdir(retired)
            os.rename(path, retired)
            os.rename(temporary, path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(temporary, path)
    finally:
        if os.path.exists(temporary):
            shutil.rmtree(temporary, ignore_errors=True)
