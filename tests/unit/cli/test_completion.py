"""``shoal completion bash|zsh``: the script is produced, and a real bash that sources it
completes shoal's commands (names from a daemon are tested end to end, with real daemons)."""

import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from shoal.cli.main import cli

BASH = shutil.which("bash")


def test_the_scripts_are_produced():
    runner = CliRunner()
    bash = runner.invoke(cli, ["completion", "bash"])
    assert bash.exit_code == 0, bash.output
    assert "_SHOAL_COMPLETE=bash_complete" in bash.output
    assert bash.output.rstrip().endswith("_shoal_completion_setup;")
    zsh = runner.invoke(cli, ["completion", "zsh"])
    assert zsh.exit_code == 0 and zsh.output.startswith("#compdef shoal")
    assert "_SHOAL_COMPLETE=zsh_complete" in zsh.output
    assert runner.invoke(cli, ["completion", "tcsh"]).exit_code != 0


@pytest.mark.skipif(BASH is None, reason="no bash on this machine")
def test_bash_completes_commands_through_the_script(tmp_path):
    # A `shoal` on PATH, as a user has it: the script calls the command it completes.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "shoal"
    launcher.write_text(f'#!/bin/sh\nexec {sys.executable} -m shoal "$@"\n')
    launcher.chmod(0o755)

    def complete(*words: str) -> list[str]:
        script = (
            "source <(shoal completion bash)\n"
            f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
            "_shoal_completion shoal\n"
            'printf "%s\\n" "${COMPREPLY[@]}"\n'
        )
        env = {
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "SHOAL_HOST": "unix:///nonexistent/shoal.sock",
        }
        done = subprocess.run(
            [str(BASH), "-c", script], capture_output=True, text=True, timeout=60, env=env
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("shoal", "serv") == ["service"]
    assert complete("shoal", "service", "r") == ["rm", "rollback"]
    assert "--no-trunc" in complete("shoal", "service", "ps", "--no")
    # No daemon answers: service names complete to nothing, and quietly.
    assert complete("shoal", "service", "ps", "") == []


def test_zsh_asks_the_same_way():
    # What the zsh script's function runs: shoal with the words so far in the environment.
    env = {"_SHOAL_COMPLETE": "zsh_complete", "COMP_WORDS": "shoal service p", "COMP_CWORD": "2"}
    done = CliRunner().invoke(cli, [], env=env, prog_name="shoal")
    assert done.exit_code == 0, done.output
    assert done.output.split("\n")[:3] == ["plain", "ps", "List the tasks of one or more services"]
