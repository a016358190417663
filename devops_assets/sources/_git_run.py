"""Running the ``git`` binary for the git source: environment, time limits, error text.

git gets an argument list (never a shell), no user or system config, no
terminal to prompt on, and a time limit after which it and the helpers it
started are killed. Error text quotes git's own reasons without credentials.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess

# Set by git hooks and `git rebase --exec`; they would point git away from ``-C repo``.
_LOCATING_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_COMMON_DIR",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
)
_MESSAGE_CAP = 500
_DUBIOUS_NOTE = (
    " (the repository is owned by another user; git's global and system config, where a "
    "safe.directory exception would live, are deliberately not read: run as its owner)"
)


class GitError(RuntimeError):
    """A git command failed, or a repository, URL, ref or date is not what was expected."""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LOCATING_VARIABLES}
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_NO_REPLACE_OBJECTS="1",
        LC_ALL="C",
    )
    if "GIT_SSH" not in env:
        # ssh asks for passwords and host keys on the terminal; batch mode fails instead.
        env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return env


def _redact(text: str) -> str:
    """Drop the user-info part of any URL so a token never reaches an error."""
    return re.sub(r"(://)[^/\s]*@", r"\1***@", text)


def _reason(stderr: bytes, returncode: int) -> str:
    """git's ``fatal:``/``error:`` lines, joined, redacted and capped; else its last line."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    meaningful = [line for line in lines if line.startswith(("fatal:", "error:"))]
    reason = _redact("; ".join(meaningful or lines[-1:])) or f"exit code {returncode}"
    if len(reason) > _MESSAGE_CAP:
        reason = reason[: _MESSAGE_CAP - 1] + "…"
    return reason + (_DUBIOUS_NOTE if "dubious ownership" in reason else "")


def _run(cmd: list[str], timeout: float, stdin: bytes | None = None) -> tuple[int, bytes, bytes]:
    """Run ``cmd`` in a process group of its own; kill the whole group if it is stopped.

    git starts helpers (``git-remote-http``, ``ssh``, ``upload-pack``) that hold the
    connection; killing only git would leave them hanging.
    """
    # An argument list, never a shell: revs and URLs cannot become commands.
    with subprocess.Popen(  # noqa: S603
        cmd,
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
        process_group=0,
    ) as proc:
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            raise
    return proc.returncode, out, err
