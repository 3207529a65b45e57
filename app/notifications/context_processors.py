from django.utils.functional import SimpleLazyObject


def unread_notifications(request):
    """The unread badge in the header: one COUNT, only on pages that render it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "unread_count": SimpleLazyObject(lambda: user.notifications.filter(read_at=None).count())
    }
