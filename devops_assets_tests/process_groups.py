"""Stopping a server the tests started in its own process group (``dagster dev``,
``dagster-daemon``): its children (code servers, run workers) go with it."""

from __future__ import annotations

import os
import signal
import subprocess
import time


def stop_group(process: subprocess.Popen, timeout_s: float) -> None:
    """SIGTERM to the group ``process`` leads, then wait for the whole group to end;
    SIGKILL to the group when it has not within ``timeout_s``."""
    group = process.pid
    if process.poll() is None:
        signal_group(group, signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            signal_group(group, signal.SIGKILL)
            process.wait(timeout=timeout_s)
    # The group outlives its leader while children shut down.
    deadline = time.monotonic() + timeout_s
    while group_alive(group):
        if time.monotonic() > deadline:
            signal_group(group, signal.SIGKILL)
            killed = time.monotonic() + 10
            while group_alive(group) and time.monotonic() < killed:
                time.sleep(0.05)
            if group_alive(group):
                raise AssertionError(f"process group {group} still alive after SIGKILL")
            return
        time.sleep(0.05)


def signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
