from django.shortcuts import render


def rate_limited(request, exception):
    """RATELIMIT_VIEW: what a sign-up or password reset over its limit gets (429). While
    Redis, which keeps the counts, is unreachable, the limited actions answer this too."""
    return render(request, "429.html", status=429)
