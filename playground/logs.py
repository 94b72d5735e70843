"""Quiet logs by default: a warning is printed once per kind (where it is raised), not once per call.

Libraries warn from inside their hot loops (bitsandbytes' "MatMul8bitLt: inputs will be cast …" on
every 8-bit matmul), and Python's own once-per-place rule is forgotten every time any code enters
``warnings.catch_warnings()``, so one session logged the same line thousands of times. Torch's
start-up notices meant for library authors (``register_constant() on Enum subclasses is
deprecated``) are left out.
"""

from __future__ import annotations

import logging
import warnings

QUIET_LOGGERS = ("torch.utils._pytree",)  # notices for library authors, printed at every start


def quiet_logs() -> None:
    """Install the once-per-kind warning printer and quiet the start-up notices (idempotent)."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    if getattr(warnings.showwarning, "once_per_kind", False):
        return
    warnings.showwarning = once_per_kind(warnings.showwarning)


def once_per_kind(show):
    """``show`` (a ``warnings.showwarning``) called only for the first warning of each category
    raised at each place in the code."""
    seen: set[tuple[type, str, int]] = set()

    def showwarning(message, category, filename, lineno, file=None, line=None):
        key = (category, filename, lineno)
        if key in seen:
            return
        seen.add(key)
        show(message, category, filename, lineno, file, line)

    showwarning.once_per_kind = True
    return showwarning
