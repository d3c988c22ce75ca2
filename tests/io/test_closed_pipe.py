"""A reader that goes away (`attnviz ... | head -1`) ends attnviz quietly with status 0, for every
command and output format."""

from __future__ import annotations

import pytest

import os
import re
import subprocess
import sys
from cli_runs import ROOT

SENTENCE = "The animal didn't cross the street because it was too tired."


TWIN = "The animal didn't cross the street because it was too wide."


@pytest.mark.slow
@pytest.mark.subprocess
def test_closed_pipe_is_a_quiet_success_for_every_command_and_format():
    """The reader goes away before attnviz writes (as `| head -1` does for long output): every
    command and format must exit 0 with nothing on stderr. All run at once to save time."""
    commands = {  # each renderer path once: rich tables (three commands) and plain JSON writes
        "show table": ["show", SENTENCE, "--words", "--candidates", "animal,street"],
        "show json": ["show", SENTENCE, "--format", "json"],
        "inspect table": ["inspect", "-t", SENTENCE, "--no-pronouns"],
        "inspect json": ["inspect", "-t", SENTENCE, "--no-pronouns", "--format", "json"],
        "compare table": ["compare", SENTENCE, TWIN],
        "probe table": ["probe", "coref", "agreement"],
        "help": ["show", "--help"],  # printed by click, outside the commands
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    names, failures = list(commands), {}
    for start in range(0, len(names), 3):  # three at a time: the machine is shared
        procs = {}
        for name in names[start : start + 3]:
            read, write = os.pipe()
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "attnviz", *commands[name]], stdout=write, stderr=subprocess.PIPE, env=env
            )
            os.close(write)
            os.close(read)  # closed before the child (still importing) writes a byte
        for name, proc in procs.items():
            _, err = proc.communicate(timeout=300)
            # Long runs print a progress line every few seconds when stderr is no terminal.
            err = b"".join(line for line in err.splitlines(True) if not re.match(rb"attnviz: [^:]+: \d+/\d+ \(", line))
            if proc.returncode != 0 or err:
                failures[name] = (proc.returncode, err.decode())
    assert not failures


@pytest.mark.slow
@pytest.mark.subprocess
def test_pipe_closed_after_the_first_line():
    """The shell case itself: `attnviz show ... | head -1`."""
    proc = subprocess.run(
        [
            "bash",
            "-c",
            f'"{sys.executable}" -m attnviz show "{SENTENCE}" | head -1; echo "status ${{PIPESTATUS[0]}}" >&2',
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.stdout.startswith("attnviz · random (seed 0)") and proc.stdout.count("\n") == 1
    assert proc.stderr == "status 0\n"
