"""The settings the dashboard is served with, as Streamlit reads them from the checkout's .streamlit/config.toml."""
import os

import pytest

from tests.conftest import ROOT


@pytest.fixture
def served_config():
    from streamlit import config

    here = os.getcwd()
    os.chdir(ROOT)   # Streamlit reads .streamlit/config.toml of the folder it is started in
    try:
        config.get_config_options(force_reparse=True)
        yield config.get_option
    finally:
        os.chdir(here)
        config.get_config_options(force_reparse=True)


def test_no_full_collection_after_every_script_run(served_config):
    # a polling placeholder reruns every 0.5 s: a full gc.collect after each run held the interpreter lock most of
    # the time and starved the background worker
    assert served_config("runner.postScriptGC") is False


def test_one_run_per_session_no_file_watcher_and_no_tracebacks(served_config):
    assert served_config("runner.fastReruns") is False
    assert served_config("server.fileWatcherType") == "none"
    assert served_config("client.showErrorDetails") == "type"
    assert served_config("client.toolbarMode") == "viewer"


def test_one_upload_limit_in_the_browsers_unit(served_config):
    from slimcore import upload as U

    # the browser refuses a file above maxUploadSize decimal megabytes; the server's own check says the same limit
    assert served_config("server.maxUploadSize") * 10**6 == U.MAX_MODEL_BYTES == U.MAX_DATA_BYTES
