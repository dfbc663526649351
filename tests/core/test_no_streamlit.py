"""The core library never imports Streamlit: every module of ``vizcore`` (subpackages included)
is imported in a fresh interpreter, and ``streamlit`` must not be in ``sys.modules`` afterwards."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Imports every vizcore module in turn and prints, as JSON, the modules imported and the first
# one after whose import ``streamlit`` was loaded. Import errors are not swallowed: walk_packages
# would otherwise skip a subpackage that fails to import.
SCRIPT = r"""
import importlib, json, pkgutil, sys

def fail(name):
    raise RuntimeError(f"could not import {name} while walking vizcore")

import vizcore
names = ["vizcore"]
culprit = "vizcore" if "streamlit" in sys.modules else None
for mod in pkgutil.walk_packages(vizcore.__path__, "vizcore.", onerror=fail):
    importlib.import_module(mod.name)
    names.append(mod.name)
    if culprit is None and "streamlit" in sys.modules:
        culprit = mod.name
print(json.dumps({"modules": names, "culprit": culprit,
                  "streamlit": "streamlit" in sys.modules}))
"""


def test_no_vizcore_module_imports_streamlit():
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    modules = out["modules"]
    # the walk really went through the package, subpackages included
    assert len(modules) >= 10, modules
    assert "vizcore.explain" in modules and any(m.startswith("vizcore.explain.")
                                                for m in modules), modules
    assert not out["streamlit"], f"streamlit was imported by {out['culprit']}"
