"""Quiet logs: ``--help`` prints the usage only, start-up notices for library authors are left out,
and a warning raised again and again is printed once (even when code keeps resetting Python's
once-per-place memory with ``warnings.catch_warnings``)."""

import io
import subprocess
import sys
import warnings

from playground.logs import once_per_kind
from playground.settings import ROOT


def test_help_prints_the_usage_and_nothing_else():
    done = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.startswith("usage: app.py")
    assert done.stderr == ""
    assert "Warning" not in done.stdout and "register_constant" not in done.stdout


def test_the_apps_imports_print_no_notices_once_logs_are_quiet():
    code = (
        "from playground.logs import quiet_logs; quiet_logs(); import playground.container, playground.ui.app"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "register_constant" not in done.stderr


def warn_in_a_hot_loop(times: int) -> None:
    for _ in range(times):
        with warnings.catch_warnings():  # what libraries do around their own calls: resets the memory
            pass
        warnings.warn(
            "MatMul8bitLt: inputs will be cast from torch.float32 to float16", UserWarning, stacklevel=1
        )


def test_a_warning_raised_on_every_call_is_printed_once_per_kind():
    printed = io.StringIO()

    def show(message, category, filename, lineno, file=None, line=None):
        printed.write(warnings.formatwarning(message, category, filename, lineno, line))

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        plain = io.StringIO()
        warnings.showwarning = lambda m, c, f, n, file=None, line=None: plain.write(f"{m}\n")
        warn_in_a_hot_loop(50)
        assert plain.getvalue().count("MatMul8bitLt") == 50  # the noise the logs had

        warnings.showwarning = once_per_kind(show)
        warn_in_a_hot_loop(50)
        warnings.warn("another kind", DeprecationWarning, stacklevel=1)
    assert printed.getvalue().count("UserWarning: MatMul8bitLt") == 1
    assert printed.getvalue().count("DeprecationWarning: another kind") == 1
