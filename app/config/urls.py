from django.contrib import admin
from django.urls import include, path

from accounts.urls import auth_urlpatterns

urlpatterns = [
    path("", include("todos.urls")),
    path("accounts/", include("accounts.urls")),
    path("accounts/", include(auth_urlpatterns)),
    path("notifications/", include("notifications.urls")),
    path("admin/", admin.site.urls),
]
