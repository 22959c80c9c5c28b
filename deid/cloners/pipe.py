"""Two programs joined by a pipe, that end with deid: how a dump cloner runs `dump | restore`.

The pipe is the point: production rows pass from one program to the other through the kernel's pipe buffer
and never land in a file, so no kill of deid, however abrupt, can leave them on disk. The pipe also ties the
two together: if the reader dies the writer gets EPIPE, and if the writer dies the reader sees the end of its
input early. deid holds neither end, so neither program can wait on deid.

What ties them to deid is PR_SET_PDEATHSIG (Linux): the kernel sends each program SIGKILL when deid dies,
even by SIGKILL, so a killed run leaves no dump reading production. The signal follows the *thread* that
started the program, so `run_pipeline` must be called from a thread that lives until it returns (it does: it
waits for both programs). Without prctl (macOS) the programs finish on their own into the working copy,
which carries no deid metadata and is dropped by the next snapshot; no file is written either way.

Error output is read into memory (it may quote row values, so it never goes to a file) and bounded.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import selectors
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from deid.errors import TerminalError, TransientError

MAX_STDERR = 64 * 1024  # per program: the first errors are the ones that say why
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@dataclass(frozen=True)
class Program:
    """One side of the pipe. Secrets go to the program's environment (`environment`: PGPASSWORD, a service
    file), never its argv, which every user of the machine can read in `ps`."""

    name: str
    argv: list[str]
    environment: Mapping[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {**os.environ, **self.environment}


@dataclass(frozen=True)
class Outcome:
    name: str
    returncode: int  # negative: ended by that signal
    stderr: str
    stopped: bool = False  # deid ended it because its partner had failed


def run_pipeline(writer: Program, reader: Program) -> list[Outcome]:
    """Run `writer | reader` until both have ended; their outcomes in the order they ended.

    As soon as one fails, the other is stopped: it cannot succeed without its partner, and a dump waiting
    for a lock would otherwise only notice the broken pipe when it next writes. If deid itself is
    interrupted (Ctrl-C, Airflow ending the task), both are killed before the exception goes on.
    """
    read_end, write_end = os.pipe()
    started: list[subprocess.Popen[bytes]] = []
    try:
        started.append(_start(writer, stdin=subprocess.DEVNULL, stdout=write_end))
        started.append(_start(reader, stdin=read_end, stdout=subprocess.DEVNULL))
    except BaseException:
        _kill(started)
        raise
    finally:
        # Only the programs hold the pipe now: this is what makes each see its partner's end.
        os.close(read_end)
        os.close(write_end)
    try:
        return _wait(dict(zip(started, (writer.name, reader.name), strict=True)))
    except BaseException:
        _kill(started)
        raise


def _start(program: Program, *, stdin, stdout) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        program.argv,
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=program.env(),
        preexec_fn=_die_with_parent(),
    )


def _wait(running: dict[subprocess.Popen[bytes], str]) -> list[Outcome]:
    """Read every program's error output until it ends, then reap it; stop the rest on the first failure."""
    outputs = {process: bytearray() for process in running}
    stopped: set[subprocess.Popen[bytes]] = set()
    ended: list[Outcome] = []
    with selectors.DefaultSelector() as selector:
        for process in running:
            assert process.stderr is not None
            selector.register(process.stderr, selectors.EVENT_READ, process)
        while selector.get_map():
            for key, _ in selector.select():
                process = key.data
                chunk = os.read(key.fd, 65536)
                if chunk:
                    kept = outputs[process]
                    kept += chunk[: max(0, MAX_STDERR - len(kept))]
                    continue
                selector.unregister(key.fileobj)
                key.fileobj.close()
                code = process.wait()
                text = outputs[process].decode(errors="replace")
                ended.append(Outcome(running[process], code, text, process in stopped))
                if code != 0:
                    for other in running:
                        if other.poll() is None:
                            other.terminate()
                            stopped.add(other)
    return ended


def _kill(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
    for process in processes:
        process.wait()
        if process.stderr:
            process.stderr.close()


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that has the kernel SIGKILL the program when deid dies; None off Linux."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        # Runs in the forked child, before exec; PDEATHSIG survives the exec (of anything not setuid).
        if prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:
            os._exit(1)  # deid died between fork and prctl: nobody is left to hand the rows to

    return preexec


@functools.cache
def _prctl():
    """libc's prctl, looked up once in deid itself so that the forked child only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


@dataclass(frozen=True)
class Speech:
    """How a dump and its restore speak of failure, for `pipeline_error`: which program is the dump, what in
    their error output means a lost connection or an input cut short, and which lines may be shown."""

    is_dump: Callable[[str], bool]  # whether a program (by name) is the dump: failing on its own, the cause
    lost: re.Pattern  # a connection lost: the run may be retried
    input_ended: re.Pattern  # the restore read an input cut short (its partner failed first)
    safe_lines: Callable[[str, Iterable[str | None]], list[str]]  # the error output without row values


def pipeline_error(
    failed: list[Outcome], production: str | None, work: str, secrets: Iterable[str | None], speech: Speech
) -> TerminalError:
    """What went wrong in `dump | restore`: the program that failed first on its own (the cause), then the
    other, each with the lines of its error output that cannot hold row values. TransientError when a
    connection was lost (Airflow retries), TerminalError otherwise."""
    causes = [o for o in failed if not (o.stopped or _ended_by_partner(o, speech))]
    # the dump failing on its own comes first: the restore can end the dump only by a broken pipe (or deid
    # stopping it), while the restore's own words for an input cut short vary with where the cut fell
    causes.sort(key=lambda o: not speech.is_dump(o.name))
    cause = (causes or failed)[0]
    lost = any(
        speech.lost.search(o.stderr) for o in failed
    )  # on the raw text: decides retrying, shows nothing
    fix = (
        "a connection was lost; the run may be retried"
        if lost
        else f"fix what {cause.name}'s first error names, then run again"
    )
    parts = [
        f"clone: dump of {production} into {work} failed in {cause.name} ({_how(cause)}): {fix}. "
        "The partial working copy is dropped."
    ]
    for outcome in [cause, *(o for o in failed if o is not cause)]:
        lines = speech.safe_lines(outcome.stderr, secrets)
        head = outcome.name if outcome is cause else f"{outcome.name} ({_how(outcome)})"
        parts.append(f"{head}:" + "".join(f"\n  {line}" for line in lines or ["(no error output)"]))
    return (TransientError if lost else TerminalError)("\n".join(parts))


def _ended_by_partner(outcome: Outcome, speech: Speech) -> bool:
    """The dump killed by the pipe its reader left, or the restore whose input ended early."""
    return outcome.returncode == -signal.SIGPIPE or bool(speech.input_ended.search(outcome.stderr))


def _how(outcome: Outcome) -> str:
    if outcome.stopped:
        return "stopped by deid"
    if outcome.returncode > 0:
        return f"exit code {outcome.returncode}"
    try:
        return f"ended by {signal.Signals(-outcome.returncode).name}"
    except ValueError:
        return f"ended by signal {-outcome.returncode}"
