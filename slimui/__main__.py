"""`python -m slimui [streamlit options]`: serve the dashboard with its warm-up started with the server, so the
first visitor finds the default views of every sample ready (or being prepared) instead of paying for them. Any
option is passed to `streamlit run` (for example --server.port 8777). `streamlit run app.py` works too; its warm-up
then starts with the first visit."""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from streamlit.web import cli

APP = Path(__file__).resolve().parent.parent / "app.py"


def _warm_up_when_served(timeout: float = 60.0) -> None:
    """Start the warm-up once Streamlit's runtime exists: the pages' caches are made with it (imported before it,
    they would warn and keep their own storage)."""
    from streamlit.runtime import Runtime

    end = time.monotonic() + timeout
    while not Runtime.exists() and time.monotonic() < end:
        time.sleep(0.05)
    from . import warmup
    warmup.start()


def main(argv: list[str] | None = None) -> None:
    threading.Thread(target=_warm_up_when_served, name="slimlab-start", daemon=True).start()
    sys.argv = ["streamlit", "run", str(APP), *(sys.argv[1:] if argv is None else argv)]
    cli.main(prog_name="streamlit")


if __name__ == "__main__":
    main()
