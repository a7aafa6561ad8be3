"""Task functions for the crash-isolation tests (imported by spawned workers from sys.path)."""

import os
import time
from pathlib import Path

#: the seed of the cell whose worker aborts
BOOM = 13


def abort_or_row(task):
    if task.cell.seed == BOOM:
        os.abort()
    return {"cell_id": task.cell.id, "measure": task.measure, "error": "", "pid": os.getpid()}


def sleep_forever(task):
    Path(os.environ["FAULTY_PIDS"], str(os.getpid())).write_text("")
    time.sleep(600)
    return {}
