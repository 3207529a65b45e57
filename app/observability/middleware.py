import logging
import time

from django.http import FileResponse
from prometheus_client import Counter, Histogram

from observability import logs

# The names django-prometheus gives these two families: the alerts and the dashboard
# (kustomize/components/monitoring) query them.
RESPONSES = Counter(
    "django_http_responses_total_by_status_view_method",
    "Responses by status code, view name and method.",
    ["status", "view", "method"],
)
LATENCY = Histogram(
    "django_http_requests_latency_seconds_by_view_method",
    "Seconds from a request entering the middleware to its response, by view and method.",
    ["view", "method"],
)
# Any other method string is one label value, so a client cannot add series at will.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
# Requests no URL pattern matched (404s of unknown paths) share one view label.
UNMATCHED_VIEW = "<unnamed view>"
logger = logging.getLogger(__name__)


class RequestContextMiddleware:
    """Give each request an id, bind it (and the user, once known) to its log lines.

    The id comes from the `X-Request-ID` header when a client or proxy sent a valid one,
    else it is new; it is returned in the response's `X-Request-ID`, so a user's report or
    a proxy's access log leads to the app's lines for that request.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = logs.start_request(request.headers.get(logs.REQUEST_ID_HEADER))
        response = self.get_response(request)
        response[logs.REQUEST_ID_HEADER] = request.request_id
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        # Every middleware has run by now, AuthenticationMiddleware included; the view
        # would load the user anyway.
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            logs.bind(user_id=user.pk)


class RequestMetricsMiddleware:
    """Count every response by status, view and method, and time it by view and method.

    Two series per request. django-prometheus' pair of middleware updated twelve (body
    sizes, charsets, transports, ...), which nothing here reads: 0.06 ms of CPU a request
    against 0.01 to 0.02 for these two (docs/performance.md). Placed outermost after the
    probes, so the time includes every middleware, sessions and authentication too.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        view = match.view_name if match is not None else UNMATCHED_VIEW
        method = request.method if request.method in _METHODS else "<invalid method>"
        if response.streaming and not isinstance(response, FileResponse):
            # Counted once the stream ends: its status is only known then.
            response.streaming_content = self._counted(
                request, response.streaming_content, view, method, started
            )
        else:
            self._count(response.status_code, view, method, started)
        return response

    @staticmethod
    def _count(status: int, view: str, method: str, started: float) -> None:
        LATENCY.labels(view, method).observe(time.perf_counter() - started)
        RESPONSES.labels(str(status), view, method).inc()

    def _counted(self, request, content, view, method, started):
        """The stream, counted as a 500 (and logged) if it fails after the headers went out:
        the client sees a broken transfer, and the alerts must see an error, not a 200."""
        status = 200
        try:
            yield from content
        except Exception as error:
            status = 500
            request.META[logs.STREAM_ERROR_KEY] = type(error).__name__
            logger.exception("streamed response failed mid-way", extra={"view": view})
            raise
        finally:
            self._count(status, view, method, started)
