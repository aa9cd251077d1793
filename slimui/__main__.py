"""`slimlab` (installed) or `python -m slimui` (from a clone): serve the dashboard, with its warm-up started with the
server so the first visitor finds the default views of every sample ready (or being prepared) instead of paying for
them.

    slimlab [--cache DIR] [--port N] [streamlit options...]

--cache DIR keeps the datasets and computed results in DIR (default: $SLIMLAB_CACHE, else ~/.cache/slimlab); --port
is short for --server.port (default 8501, Streamlit's, or STREAMLIT_SERVER_PORT). Every other option goes to
`streamlit run` unchanged, for example --server.address 0.0.0.0 or --server.headless true. The dashboard's own
Streamlit settings (.streamlit/config.toml beside app.py) are read wherever the command is started from."""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

from slimui.paths import APP

DEFAULT_PORT = 8501


def _warm_up_when_served(timeout: float = 60.0) -> None:
    """Start the warm-up once Streamlit's runtime exists: the pages' caches are made with it (imported before it,
    they would warn and keep their own storage)."""
    from streamlit.runtime import Runtime

    end = time.monotonic() + timeout
    while not Runtime.exists() and time.monotonic() < end:
        time.sleep(0.05)
    from slimui import warmup
    warmup.start()


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Our own options, and the rest (Streamlit's) in the order given."""
    parser = argparse.ArgumentParser(
        prog="slimlab", description="Serve the SlimLab dashboard. Options not listed here go to `streamlit run` "
                                    "(see `streamlit run --help`), e.g. --server.address 0.0.0.0.")
    parser.add_argument("--cache", metavar="DIR", type=Path,
                        help="folder for datasets and computed results (default: $SLIMLAB_CACHE, else "
                             "~/.cache/slimlab); created if missing")
    parser.add_argument("--port", type=int, help=f"port to serve on (default {DEFAULT_PORT}; same as --server.port)")
    ours, rest = parser.parse_known_args(argv)
    if ours.port is not None:
        if not 0 < ours.port < 65536:
            parser.error(f"--port {ours.port}: a port is a number from 1 to 65535")
        if any(a == "--server.port" or a.startswith("--server.port=") for a in rest):
            parser.error("give the port once: --port or --server.port")
        rest = ["--server.port", str(ours.port), *rest]
    return ours, rest   # no port given: Streamlit's own (8501, or STREAMLIT_SERVER_PORT / server.port in a config)


def main(argv: list[str] | None = None) -> None:
    ours, rest = parse(sys.argv[1:] if argv is None else argv)
    if ours.cache is not None:
        try:
            ours.cache.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            sys.exit(f"slimlab: cannot use {ours.cache} as the cache folder: {e.strerror or e}")
        os.environ["SLIMLAB_CACHE"] = str(ours.cache.resolve())
    from streamlit.web import cli

    threading.Thread(target=_warm_up_when_served, name="slimlab-start", daemon=True).start()
    sys.argv = ["streamlit", "run", str(APP), *rest]
    cli.main(prog_name="streamlit")


if __name__ == "__main__":
    main()
