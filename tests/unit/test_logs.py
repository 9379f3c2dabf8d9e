import json
import logging
import sys

import pytest
from loguru import logger

from shared.logs import configure_logging


@pytest.fixture(name="restore_logging")
def _restore_logging():
    yield
    logger.remove()
    logger.configure(patcher=None, extra={})
    logging.basicConfig(handlers=[], force=True)
    logger.add(sys.stderr)


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_with_secrets_redacted_and_library_logs_routed(capfd):
    configure_logging("receiver", "info", "json", secrets=["s3cret-value"])
    logger.info("oops, the secret s3cret-value leaked into a message")
    logging.getLogger("uvicorn.error").warning("uvicorn says %s", "hello")
    logging.getLogger("rq.worker").info("per-job chatter is held back at info")
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line]
    assert [line["message"] for line in lines] == [
        "oops, the secret *** leaked into a message",
        "uvicorn says hello",
    ]
    assert lines[0]["component"] == "receiver"
    assert lines[1]["logger"] == "uvicorn.error"
    assert lines[1]["level"] == "WARNING"
