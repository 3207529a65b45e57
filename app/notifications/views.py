from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from core.urls import safe_next_url
from notifications.models import Notification, forget_unread_counts, unread_count

PAGE_SIZE = 30


@login_required
@require_GET
def notification_list(request):
    notifications = request.user.notifications.select_related("todo")
    page = Paginator(notifications, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "notifications/list.html", {"page": page})


@login_required
@require_POST
def mark_read(request, pk):
    notification = get_object_or_404(Notification, pk=pk, user=request.user)
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    if request.htmx:
        # The row, then out of band what the unread count drives: the header's badge and
        # the "Mark all read" button.
        html = render_to_string(
            "notifications/_item.html", {"notification": notification}, request=request
        )
        state = {
            "oob": True,
            "unread_count": unread_count(request.user),
        }
        for fragment in ("notifications/_badge.html", "notifications/_mark_all.html"):
            html += render_to_string(fragment, state, request=request)
        return HttpResponse(html)
    return redirect(safe_next_url(request, default="notifications:list"))


@login_required
@require_POST
def mark_all_read(request):
    count = request.user.notifications.filter(read_at=None).update(read_at=timezone.now())
    forget_unread_counts([request.user.pk])
    messages.success(request, f"Marked {count} notification{'s' if count != 1 else ''} read.")
    return redirect(safe_next_url(request, default="notifications:list"))
