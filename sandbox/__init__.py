"""Local stand-ins for the real things Toilless acts on: a Slack sink, a moto server for AWS, and whatever each SOP adds.

Used by ``make run`` (``python -m sandbox run``) and by the tests, which start the same servers on free ports.
"""

import sys as _sys
from pathlib import Path as _Path

# The shared library lives in plugins/ (Airflow's plugins folder is on its sys.path); make it importable here too.
_PLUGINS = str(_Path(__file__).resolve().parents[1] / "plugins")
if _PLUGINS not in _sys.path:
    _sys.path.insert(0, _PLUGINS)
