"""Files a reader never sees half-written: bytes, text and JSON written beside their path and renamed into place."""

import json
import os
from pathlib import Path


def write_atomic(path, data):
    """Write bytes or text to `path` through a file beside it and a rename: readers see the old file or the new."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as stream:
            stream.write(data.encode() if isinstance(data, str) else data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_json(path, value):
    """`value` as indented JSON, written atomically."""
    write_atomic(path, json.dumps(value, indent=2) + "\n")
