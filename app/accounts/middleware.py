from django.contrib import auth
from django.contrib.auth.middleware import (
    AuthenticationMiddleware as DjangoAuthenticationMiddleware,
)
from django.utils.functional import SimpleLazyObject

from accounts.backends import session_user


def signed_in_user(request):
    """Django's `auth.get_user`, offered the user the session read brought with it."""
    loaded = getattr(request.session, "loaded_user", None)
    with session_user(loaded):
        return auth.get_user(request)


class AuthenticationMiddleware(DjangoAuthenticationMiddleware):
    """Django's, except that `request.user` comes with the session read: no query of its own
    (accounts/sessions.py). Still lazy: a request that never asks pays nothing."""

    def process_request(self, request):
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: signed_in_user(request))
