"""Helpers of the deployment tests: free ports, waiting for a server, stopping it by group."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

from tests.conftest import skip_or_fail
from todoscale.deploy.probes import free_port_run, free_ports_at, wait_answer

__all__ = ["free_port_run", "free_ports_at", "require", "stop_group", "wait_for"]


def wait_for(url: str, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """Poll `url` until it answers 200; fail when the process exits or time runs out."""
    if wait_answer(url, proc, timeout):
        return
    if proc is not None and proc.poll() is not None:
        raise AssertionError(f"the server exited with {proc.returncode} before answering")
    raise AssertionError(f"{url} did not answer within {timeout} s")


def stop_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Signal the process group `proc` leads, then SIGKILL it if it lingers."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass


def require(tool: str) -> str:
    """The path of a tool the test needs, or skip (fail under CI) naming how to install it."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin"])
    path = shutil.which(tool, path=search)
    if path is None:
        skip_or_fail(f"{tool} is not installed (apt-get install {tool})")
    assert path is not None
    return path
