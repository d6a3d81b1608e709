"""A fork server for execution environments: cold starts in milliseconds, not seconds.

A worker process spends most of its start importing boto3, botocore and Powertools (about half
a second of CPU each, several seconds when ten start at once on two cores). The zygote imports
them once, then forks one child per environment: the child takes its own session, log file,
working directory and environment variables (exactly the function's), then runs
`toolchain.embedded.worker` as a fresh process would — unpacking the archive and importing the
function's code from it. Nothing of the function is imported before the fork.

Protocol (JSON lines): the runner writes `{"id", "argv", "env", "cwd", "log"}` to the zygote's
stdin; the zygote answers `{"id", "pid"}` (or `{"id", "error"}`) on its stdout, and reports every
child that ends as `{"exited": pid, "status": code}` (negative: killed by that signal). When the
runner goes away (stdin closes) the zygote terminates its children and exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

PRELOAD = (
    "boto3",
    "boto3.dynamodb.types",
    "botocore.session",
    "botocore.client",
    "botocore.parsers",
    "botocore.serialize",
    "botocore.endpoint",
    "botocore.auth",
    "botocore.exceptions",
    "aws_lambda_powertools",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.data_classes.sqs_event",
    "aws_lambda_powertools.utilities.idempotency",
    "http.server",
    "zipfile",
    "toolchain.embedded.worker",
)
"""Libraries every environment imports: loaded once, shared copy-on-write by the children."""


# --- every child of the runner --------------------------------------------------------------------


def watch_parent(parent: int, interval: float = 1.0) -> None:
    """End this process when `parent` (the runner) is gone, however it ended.

    The runner's children run in sessions of their own (Ctrl-C reaches the runner only, which
    stops them in order); when the runner is killed instead, nothing would stop them: this
    daemon thread does."""

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="watch-parent").start()


# --- the zygote process ---------------------------------------------------------------------------


def _child(spec: dict[str, Any], protocol_fd: int) -> None:
    """In the forked child: become the environment, run the worker, never return."""
    code = 1
    try:
        os.close(protocol_fd)
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        log = os.open(spec["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.chdir(spec["cwd"])
        os.environ.clear()
        os.environ.update(spec["env"])
        sys.argv = ["toolchain.embedded.worker", *spec["argv"]]
        from toolchain.embedded import worker

        worker.mark_start()
        code = worker.main(list(spec["argv"]))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve() -> int:
    """The zygote's loop: spawn on request, report exits, stop when the runner goes away."""
    protocol_fd = os.dup(1)
    os.dup2(2, 1)  # anything printed here goes to the zygote's log, never into the protocol
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            __import__(name)
    children: set[int] = set()
    buffer = b""

    def send(message: dict[str, Any]) -> None:
        os.write(protocol_fd, (json.dumps(message) + "\n").encode())

    def reap() -> None:
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            children.discard(pid)
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            send({"exited": pid, "status": code})

    send({"ready": os.getpid()})
    while True:
        readable, _, _ = select.select([0], [], [], 0.1)
        reap()
        if not readable:
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            break
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            spec = json.loads(line)
            try:
                pid = os.fork()
            except OSError as exc:
                send({"id": spec["id"], "error": str(exc)})
                continue
            if pid == 0:
                _child(spec, protocol_fd)
            children.add(pid)
            send({"id": spec["id"], "pid": pid})
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    return 0


# --- the runner's side ----------------------------------------------------------------------------


class ForkedProcess:
    """A child of the zygote, with the part of `subprocess.Popen`'s interface the fleet uses."""

    def __init__(self, factory: Zygote, pid: int) -> None:
        self.factory = factory
        self.pid = pid

    @property
    def returncode(self) -> int | None:
        """Exit status once ended (negative: the signal that killed it)."""
        return self.factory.status(self.pid)

    def poll(self) -> int | None:
        """The exit status, or None while it runs."""
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the end; raises subprocess.TimeoutExpired like Popen."""
        status = self.factory.wait(self.pid, timeout)
        if status is None:
            raise subprocess.TimeoutExpired(f"environment {self.pid}", timeout or 0)
        return status

    def _signal(self, number: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, number)

    def kill(self) -> None:
        """SIGKILL."""
        self._signal(signal.SIGKILL)

    def terminate(self) -> None:
        """SIGTERM."""
        self._signal(signal.SIGTERM)


class Zygote:
    """The runner's handle on the fork server."""

    def __init__(self, environment: dict[str, str], log: Path) -> None:
        with open(log, "ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "toolchain.embedded.zygote"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env={**environment, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
        self._cond = threading.Condition()
        self._pids: dict[int, int | str] = {}
        self._exits: dict[int, int] = {}
        self._next = 0
        self._ready = False
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True, name="zygote-reader")
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            message = json.loads(line)
            with self._cond:
                if "ready" in message:
                    self._ready = True
                elif "exited" in message:
                    self._exits[int(message["exited"])] = int(message["status"])
                else:
                    self._pids[int(message["id"])] = message.get("pid") or str(message.get("error"))
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the libraries are loaded; False if the zygote died or took too long."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._ready and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return self._ready and not self._closed

    @property
    def alive(self) -> bool:
        """Still serving."""
        return not self._closed and self.process.poll() is None

    def spawn(self, argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> ForkedProcess:
        """Fork one environment; raises OSError if the zygote cannot."""
        with self._cond:
            self._next += 1
            request = self._next
        line = json.dumps({"id": request, "argv": argv, "env": env, "cwd": str(cwd), "log": str(log)})
        assert self.process.stdin is not None
        try:
            with self._cond:  # one writer at a time: lines must not interleave
                self.process.stdin.write((line + "\n").encode())
                self.process.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise OSError(f"the environment fork server is gone: {exc}") from exc
        deadline = time.monotonic() + 30
        with self._cond:
            while request not in self._pids:
                if self._closed or time.monotonic() > deadline:
                    raise OSError("the environment fork server did not answer")
                self._cond.wait(0.5)
            answer = self._pids.pop(request)
        if isinstance(answer, str):
            raise OSError(f"the environment fork server could not fork: {answer}")
        return ForkedProcess(self, answer)

    def status(self, pid: int) -> int | None:
        """A child's exit status, None while it runs."""
        with self._cond:
            return self._exits.get(pid)

    def wait(self, pid: int, timeout: float | None) -> int | None:
        """Wait for a child to end (None on timeout)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while pid not in self._exits:
                if self._closed:
                    return self._exits.get(pid, -signal.SIGKILL)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining if remaining is not None else 1.0)
            return self._exits[pid]

    def close(self) -> None:
        """Stop the zygote (it terminates any child still alive)."""
        if self.process.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


if __name__ == "__main__":
    sys.exit(serve())
