"""Run a bench script under a Python that has what it needs.

The README says `python bench/report.py --quick`, but kvred's dependencies (psutil, and
uvloop & co. for the kvred the scripts start with the same interpreter) usually live in
the repository's `.venv`, which a new shell has not activated. So each script calls
`use_repo_venv()` before its first third-party import: when a module is missing and
`.venv/bin/python` (or $KVRED_BENCH_PYTHON) is another interpreter, the script is
re-executed under it with the same arguments; otherwise it says what to install.

Standard library only: it runs before anything else can be imported.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import tomllib
from pathlib import Path

__all__ = ["use_repo_venv", "kvred_dependencies"]

REPO_ROOT = Path(__file__).resolve().parent.parent
REEXEC_MARK = "KVRED_BENCH_REEXEC"  # set across the exec, so a bad venv cannot loop


def kvred_dependencies() -> list[str]:
    """The import names of kvred's runtime dependencies, from pyproject.toml
    (each distribution there imports under its own name)."""
    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        deps = tomllib.load(f)["project"]["dependencies"]
    return [re.split(r"[<>=!~;\[ ]", dep, maxsplit=1)[0].strip().replace("-", "_") for dep in deps]


def _venv_python() -> Path:
    return Path(os.environ.get("KVRED_BENCH_PYTHON") or REPO_ROOT / ".venv" / "bin" / "python")


def _same_interpreter(python: Path) -> bool:
    # a venv's bin/python is a symlink to the base interpreter: compare environments, not files
    env_dir = python.parent.parent
    return Path(sys.prefix).resolve() == env_dir.resolve() or Path(sys.executable) == python


def use_repo_venv(*extra: str) -> None:
    """Make sure kvred's dependencies and `extra` import, re-executing if they do not."""
    missing = [name for name in (*kvred_dependencies(), *extra) if importlib.util.find_spec(name) is None]
    if not missing:
        return
    python = _venv_python()
    if python.exists() and not _same_interpreter(python) and not os.environ.get(REEXEC_MARK):
        sys.stderr.write(f"{sys.argv[0]}: {', '.join(missing)} not installed for {sys.executable}: "
                         f"running under {python}\n")
        sys.stderr.flush()
        os.environ[REEXEC_MARK] = "1"
        os.execv(python, [str(python), *sys.argv])
    sys.stderr.write(
        f"{sys.argv[0]}: {', '.join(missing)} not installed for {sys.executable}. "
        f"Install them in the repository's venv, which the bench scripts use by themselves:\n"
        f"  cd {REPO_ROOT} && python3 -m venv .venv && .venv/bin/pip install -e '.[bench]'\n"
    )
    sys.exit(2)
