"""Task functions for the crash-isolation tests (imported by spawned workers from sys.path)."""

import os
import time
from pathlib import Path


def abort_or_row(cell):
    if cell["cell_id"] == "boom":
        os.abort()
    return {"cell_id": cell["cell_id"], "measure": cell["measure"][0], "error": "", "pid": os.getpid()}


def sleep_forever(cell):
    Path(os.environ["FAULTY_PIDS"], str(os.getpid())).write_text("")
    time.sleep(600)
    return {}
