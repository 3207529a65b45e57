from django.utils.functional import SimpleLazyObject

from notifications.models import unread_count


def unread_notifications(request):
    """The unread badge in the header, only on pages that render it (from the cache)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"unread_count": SimpleLazyObject(lambda: unread_count(user))}
