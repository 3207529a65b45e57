from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

from accounts.urls import auth_urlpatterns

urlpatterns = [
    path("", include("todos.urls")),
    path("accounts/", include("accounts.urls")),
    path("accounts/", include(auth_urlpatterns)),
    path("notifications/", include("notifications.urls")),
    path("help/", TemplateView.as_view(template_name="help.html"), name="help"),
    path("admin/", admin.site.urls),
]
