"""The soak bench's process accounting (the load itself runs against a live service)."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.processes import process_tree, rss_mb
from bench.soak import growth


def test_process_tree_finds_children_and_reads_their_memory() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        tree = process_tree(os.getpid())
        assert tree["orchestrator"] == os.getpid()
        assert child.pid in tree.values()  # named by pid: not a Triton process
        assert rss_mb(os.getpid()) > 10
    finally:
        child.kill()
        child.wait()


def test_growth_is_relative_to_the_first_sample_of_each_process() -> None:
    samples = [{"t_s": 60, "rss_mb": {"orchestrator": 200.0, "stub llm:1": 500.0}},
               {"t_s": 660, "rss_mb": {"orchestrator": 210.0, "stub llm:1": 500.0,
                                       "stub tts:1": 90.0}}]
    assert growth(samples) == [("orchestrator", 200.0, 210.0, 5.0),
                               ("stub llm:1", 500.0, 500.0, 0.0)]
