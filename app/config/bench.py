"""Bench-only URLconf and middleware, loaded by `config.settings.bench` and nothing else.

- `/bench/limit/`: the limit reference, a view that does no work and no queries, served
  through the full middleware stack. The ratio of an endpoint's req/s to it is what
  the performance table compares, since absolute figures move between machines.
- `QueryCountMiddleware`: when a request carries `X-Bench-Count-Queries`, the response
  carries `X-Bench-Queries: N`, every SQL statement of the request (middleware, view,
  session save) included. Without the header it only passes the request on.
"""

from contextlib import ExitStack

from django.db import connections
from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.http import require_GET

COUNT_REQUEST_HEADER = "X-Bench-Count-Queries"
COUNT_RESPONSE_HEADER = "X-Bench-Queries"


class QueryCountMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if COUNT_REQUEST_HEADER not in request.headers:
            return self.get_response(request)
        statements = 0

        def count(execute, sql, params, many, context):
            nonlocal statements
            statements += 1
            return execute(sql, params, many, context)

        with ExitStack() as stack:
            for connection in connections.all():
                stack.enter_context(connection.execute_wrapper(count))
            response = self.get_response(request)
        response[COUNT_RESPONSE_HEADER] = str(statements)
        return response


@require_GET
def limit(request):
    return HttpResponse(b"ok\n", content_type="text/plain")


urlpatterns = [
    path("bench/limit/", limit, name="bench-limit"),
    path("", include("config.urls")),
]
