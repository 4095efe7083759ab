"""Start-up of the ``xdream`` command: ``--help``, ``--version`` and argument errors answer
without importing torch (about 2 s of CPU), and a Ctrl-C while torch loads waits until the
import is complete, then ends with one line and exit 130 (xdream.cli.startup)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from xdream.cli.startup import interrupts_deferred

#: Each answered by the parser alone: no command runs, so nothing needs torch.
PARSER_ONLY = [["--help"], ["--version"], ["--bogus"], ["evolve", "--help"], ["evolve", "--generation", "3"],
               ["characterise", "--help"], ["gradient", "--nosuch"], ["rig", "check", "tcp://127.0.0.1:99999"],
               ["rig", "check", "--timeout"]]


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_help_version_and_argument_errors_do_not_import_torch():
    out = python(f"""
        import contextlib, io, sys
        from xdream.__main__ import run
        for argv in {PARSER_ONLY!r}:
            sys.argv = ["xdream", *argv]
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
                code = run()
            print(argv, code, "torch" in sys.modules, err.getvalue().count(chr(10)))
    """)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == len(PARSER_ONLY)
    for argv, line in zip(PARSER_ONLY, lines):
        code, torch_loaded, error_lines = line.rsplit(" ", 3)[1:]
        assert torch_loaded == "False", f"xdream {' '.join(argv)} imported torch"
        assert (code, error_lines) == (("0", "0") if argv[-1] in ("--help", "--version") else ("2", "1")), line


def test_interrupts_are_held_until_the_block_ends():
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            reached.append("after the signal")
    assert reached == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_while_torch_loads_is_exit_130_after_the_import():
    """The SIGINT arrives when torch's native module starts loading (a meta-path hook sends it):
    the import completes, then the command ends with one line and exit 130."""
    out = python("""
        import atexit, importlib.abc, os, signal, sys

        class SigintAtTorchC(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "torch._C":
                    sys.meta_path.remove(self)
                    os.kill(os.getpid(), signal.SIGINT)
                return None

        atexit.register(lambda: print("torch loaded:", hasattr(sys.modules.get("torch"), "nn")))
        sys.meta_path.insert(0, SigintAtTorchC())
        sys.argv = ["xdream", "list"]
        from xdream.__main__ import run
        sys.exit(run())
    """)
    assert out.returncode == 130, out.stderr
    assert out.stderr == "xdream: interrupted\n"
    assert out.stdout.strip() == "torch loaded: True"
