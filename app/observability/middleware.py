from observability import logs


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
