"""`python -m slimui [streamlit options]`: serve the dashboard with its warm-up started with the server, so the
first visitor finds the default views of every sample ready (or being prepared) instead of paying for them. Any
option is passed to `streamlit run` (for example --server.port 8777). `streamlit run app.py` works too; its warm-up
then starts with the first visit."""
from __future__ import annotations

import sys
from pathlib import Path

from streamlit.web import cli

from . import warmup

APP = Path(__file__).resolve().parent.parent / "app.py"


def main(argv: list[str] | None = None) -> None:
    warmup.start()   # waits for the server's runtime, then prepares every sample in the background worker
    sys.argv = ["streamlit", "run", str(APP), *(sys.argv[1:] if argv is None else argv)]
    cli.main(prog_name="streamlit")


if __name__ == "__main__":
    main()
