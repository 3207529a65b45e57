"""Watching gunicorn's workers: the children of a process and their memory."""

import subprocess
import sys
import time

import pytest

from bench.processes import WorkerMemory, child_memory, ps_child_memory, tree_cpu_seconds

# A parent with two children that each hold some memory, like a master and its workers.
PARENT = """
import subprocess, sys, time
child = "x = bytearray(20 * 1024 * 1024); import time; time.sleep(60)"
kids = [subprocess.Popen([sys.executable, "-c", child]) for _ in range(2)]
print(" ".join(str(kid.pid) for kid in kids), flush=True)
time.sleep(60)
"""


@pytest.fixture
def parent():
    process = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    kids = {int(pid) for pid in process.stdout.readline().split()}
    yield process.pid, kids
    for pid in kids:
        subprocess.run(["kill", str(pid)], check=False)
    process.kill()
    process.wait()


@pytest.mark.slow
def test_child_memory_finds_the_children_and_their_resident_memory(parent):
    parent_pid, kids = parent
    deadline = time.monotonic() + 20
    children = {}
    while time.monotonic() < deadline:  # until both have touched their 20 MiB
        children = child_memory(parent_pid)
        if set(children) == kids and all(rss > 20 * 1024 for rss, _ in children.values()):
            break
        time.sleep(0.1)
    assert set(children) == kids
    for rss, peak in children.values():
        assert 20 * 1024 < rss <= peak

    sampler = WorkerMemory(parent_pid)
    sampler.sample()
    peak = sampler.stop()
    assert peak.workers_seen == 2
    assert peak.per_worker_kib > 20 * 1024
    assert peak.total_kib >= 2 * 20 * 1024


def test_ps_listing_fallback():
    listing = "    1     0  1200\n  200     1 81000\n  201   200 90000\n  202   200 95000\n"
    assert ps_child_memory(200, listing) == {201: (90000, 90000), 202: (95000, 95000)}
    assert ps_child_memory(999, listing) == {}


# A parent whose children burn CPU, then exit and are reaped, like recycled workers.
BUSY_PARENT = """
import subprocess, sys, time
spin = "import time; end = time.process_time() + 0.4\\nwhile time.process_time() < end: pass"
for _ in range(2):
    subprocess.run([sys.executable, "-c", spin], check=True)
print("done", flush=True)
time.sleep(60)
"""


@pytest.mark.slow
def test_tree_cpu_counts_children_already_reaped():
    process = subprocess.Popen(
        [sys.executable, "-c", BUSY_PARENT], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline().strip() == "done"
        used = tree_cpu_seconds(process.pid)
        assert used is not None
        assert 0.8 <= used < 5  # both children's 0.4 s, plus interpreter start-ups
    finally:
        process.kill()
        process.wait()


def test_tree_cpu_of_a_missing_process_is_unknown():
    assert tree_cpu_seconds(2**22 + 1) is None  # above the kernel's largest pid
