import functools

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django_ratelimit.decorators import ratelimit

from accounts.forms import ProfileForm, SignUpForm
from notifications.services import send_welcome_email_on_commit


def signup_rate(group, request) -> str:
    return settings.SIGNUP_RATE_LIMIT


def password_reset_rate(group, request) -> str:
    return settings.PASSWORD_RESET_RATE_LIMIT


def reset_email_key(group, request) -> str:
    """The address a reset is asked for, as the form compares it (case-insensitively)."""
    return request.POST.get("email", "").strip().lower()


def limit_password_resets(view):
    """PASSWORD_RESET_RATE_LIMIT per client address and per email address asked for."""
    limit = functools.partial(ratelimit, rate=password_reset_rate, method="POST")
    return limit(key="ip", group="password_reset:ip")(
        limit(key=reset_email_key, group="password_reset:email")(view)
    )


@sensitive_post_parameters("password1", "password2")
@ratelimit(key="ip", rate=signup_rate, method="POST")
def signup(request):
    if request.user.is_authenticated:
        return redirect("todos:list")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        send_welcome_email_on_commit(user)
        login(request, user, backend="accounts.backends.CachedModelBackend")
        messages.success(request, f"Welcome, {user.name}! Add your first todo below.")
        return redirect("todos:list")
    return render(request, "registration/signup.html", {"form": form})


@login_required
def profile(request):
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Profile saved.")
        return redirect("accounts:profile")
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/profile.html", {"form": form}, status=status)
