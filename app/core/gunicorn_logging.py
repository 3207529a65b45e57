"""gunicorn access log as JSON lines, matching the app's own log format."""

import json
from datetime import UTC, datetime

from gunicorn import glogging

from observability.logs import STREAM_ERROR_KEY

# Probes hit these every few seconds; logging each success would drown real traffic.
QUIET_PATHS = frozenset({"/healthz", "/readyz"})


def _header(headers: list[tuple[str, str]], name: str) -> str:
    return next((value for key, value in headers if key.lower() == name.lower()), "")


class JsonAccessLogger(glogging.Logger):
    def access(self, resp, req, environ, request_time):
        if not self.cfg.accesslog:
            return
        path = environ.get("PATH_INFO", "")
        if path in QUIET_PATHS and resp.status_code < 400:
            return
        record = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": "INFO",
            "logger": "gunicorn.access",
            "method": environ.get("REQUEST_METHOD"),
            "path": path,
            "query": environ.get("QUERY_STRING", ""),
            "status": resp.status_code,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 2),
            "remote": environ.get("REMOTE_ADDR"),
            "user_agent": environ.get("HTTP_USER_AGENT", ""),
            # The app's id for the request (observability/middleware.py): the client's
            # X-Request-ID when valid, else a new one, so the access line joins the app's.
            "request_id": _header(resp.headers, "X-Request-ID")
            or environ.get("HTTP_X_REQUEST_ID", ""),
        }
        # A streamed response that failed mid-way (observability/middleware.py): the client
        # got a 200 and a broken transfer; the log says it was a server error.
        if stream_error := environ.get(STREAM_ERROR_KEY):
            record |= {
                "level": "ERROR",
                "status": 500,
                "status_sent": resp.status_code,
                "error": f"response stream failed: {stream_error}",
            }
            self.access_log.error(json.dumps(record))
            return
        self.access_log.info(json.dumps(record))
