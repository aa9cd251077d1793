"""Where the dashboard's files are: app.py, views/ (the pages), lessons/ and .streamlit/config.toml sit at the top of
a checkout, and inside the package (slimui/dashboard/) once SlimLab is installed with pip."""
from __future__ import annotations

from pathlib import Path

_INSTALLED = Path(__file__).resolve().parent / "dashboard"
HOME = _INSTALLED if (_INSTALLED / "app.py").is_file() else Path(__file__).resolve().parent.parent
APP = HOME / "app.py"
LESSONS = HOME / "lessons"
