from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts import views
from accounts.forms import QueuedPasswordResetForm

app_name = "accounts"

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("profile/", views.profile, name="profile"),
]

# Django's auth views (login, logout, password change and reset) keep their
# global names ("login", "password_reset", ...), which their templates expect.
auth_urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path(
        "password_reset/",
        views.limit_password_resets(
            auth_views.PasswordResetView.as_view(form_class=QueuedPasswordResetForm)
        ),
        name="password_reset",
    ),
    path("", include("django.contrib.auth.urls")),
]
