"""The JSON-lines call log tests read to count calls and round trips.

One object per line, written and flushed under a lock so that concurrent
connections never interleave lines.  Fields are listed in sim/README.md.
"""

import json
import os
import threading
import time


class CallLog:
    def __init__(self, path):
        self.path = path
        self._lock = threading.Lock()
        # O_APPEND keeps writes at the end even after clear() truncates.
        self._file = open(path, "a", buffering=1, encoding="utf-8")

    def write(self, **fields):
        record = {"ts": time.time()}
        record.update(fields)
        line = json.dumps(record, separators=(",", ":"))
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def clear(self):
        with self._lock:
            os.truncate(self.path, 0)
