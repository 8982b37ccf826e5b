"""Process-wide tunings (roster.bulk.tuning) belong to a worker process of its own: running jobs in a
process that also serves requests (the embedded shape, `drain`) leaves the interpreter as it was."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

from tests.bulk.conftest import csv_of, outcomes


def test_running_a_job_leaves_the_interpreters_settings_alone(bulk):
    before = gc.get_threshold(), sys.getswitchinterval(), gc.get_freeze_count()
    job, log = bulk.run(csv_of("T-1,Ann,,,,", "T-2,Bea,,,,"))
    assert job["status"] == "COMPLETED" and outcomes(log) == ["created", "created"]
    assert (gc.get_threshold(), sys.getswitchinterval(), gc.get_freeze_count()) == before


def test_a_standalone_worker_process_is_tuned_once():
    code = (
        "import gc, sys\n"
        "from roster.bulk import tuning\n"
        "tuning.prepare_process()\n"
        "first = (gc.get_threshold(), sys.getswitchinterval())\n"
        "gc.set_threshold(700, 10, 10)\n"
        "tuning.prepare_process()\n"
        "print(first[0] == tuning.GC_THRESHOLDS, first[1] <= tuning.SWITCH_INTERVAL, gc.get_threshold()[0])\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == ["True", "True", "700"]
