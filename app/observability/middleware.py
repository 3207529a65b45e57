import time

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
    sizes, charsets, transports, ...), which nothing here reads, for about a fifth of a
    stored list page's CPU (docs/performance.md). Placed outermost after the probes, so
    the time includes every middleware, sessions and authentication too.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        view = match.view_name if match is not None else UNMATCHED_VIEW
        method = request.method if request.method in _METHODS else "<invalid method>"
        LATENCY.labels(view, method).observe(time.perf_counter() - started)
        RESPONSES.labels(str(response.status_code), view, method).inc()
        return response
