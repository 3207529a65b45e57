import zoneinfo

from django.http import JsonResponse
from django.utils import timezone
from django.utils.cache import patch_cache_control

from core.health import readiness

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"


class HealthCheckMiddleware:
    """Answer probes before anything else runs.

    Kubernetes probes arrive with the pod IP as Host. Answering here, before
    CommonMiddleware calls request.get_host(), serves them without adding pod
    IPs (or "*") to ALLOWED_HOSTS for the rest of the site.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == LIVENESS_PATH:
            return JsonResponse({"status": "ok"})
        if request.path == READINESS_PATH:
            ready, status, checks = readiness()
            return JsonResponse({"status": status, "checks": checks}, status=200 if ready else 503)
        return self.get_response(request)


class UserTimezoneMiddleware:
    """Show times in the signed-in user's zone (stored times stay UTC)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.time_zone:
            timezone.activate(zoneinfo.ZoneInfo(user.time_zone))
        else:
            timezone.deactivate()
        return self.get_response(request)


class PrivatePagesMiddleware:
    """`Cache-Control: private, no-store` on every response to a signed-in user: their pages
    and exports must not stay in a shared proxy or on a shared computer's disk."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.user.is_authenticated:
            patch_cache_control(response, private=True, no_store=True)
        return response
