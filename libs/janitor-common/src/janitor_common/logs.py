"""Logging to stderr in one format for every process (containers collect stderr)."""

from __future__ import annotations

import json
import logging
import sys
import time


class CloudJsonFormatter(logging.Formatter):
    """One JSON object per line with ``severity``, as Google Cloud's logging agent reads (``--gcp-logging``)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
        }
        if record.exc_info:
            entry["message"] += "\n" + self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(level: str = "INFO", *, cloud_json: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if cloud_json:
        formatter: logging.Formatter = CloudJsonFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own access log is replaced by ours (one line per request, with timing).
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
