from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import Session, User
from accounts.sessions import SessionStore


@admin.register(User)
class TodoUserAdmin(UserAdmin):
    fieldsets = (
        *UserAdmin.fieldsets,
        ("Profile", {"fields": ("display_name", "time_zone", "email_reminders")}),
    )
    list_display = ("username", "email", "display_name", "is_staff", "date_joined")
    actions = ["sign_out_everywhere"]

    @admin.action(description="Sign out selected users on every device")
    def sign_out_everywhere(self, request, queryset):
        # Sessions are not listed in the admin: their keys are credentials. Each one ends
        # through its store, which deletes the cached copy with the row.
        keys = Session.objects.filter(user__in=queryset).values_list("session_key", flat=True)
        for key in keys:
            SessionStore(key).delete()
        self.message_user(request, f"Ended {len(keys)} session(s).")
