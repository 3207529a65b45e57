from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import User


@admin.register(User)
class TodoUserAdmin(UserAdmin):
    fieldsets = (
        *UserAdmin.fieldsets,
        ("Profile", {"fields": ("display_name", "time_zone", "email_reminders")}),
    )
    list_display = ("username", "email", "display_name", "is_staff", "date_joined")
