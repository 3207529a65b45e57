from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.functional import cached_property
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import push_url, reswap, retarget

from core.urls import safe_next_url
from todos.export import csv_filename, todo_csv_rows
from todos.filters import SORT_LABELS, TodoFilter
from todos.forms import CategoryForm, QuickAddForm, TodoForm
from todos.models import Category, Todo, categories_of, overdue
from todos.rows import rows

PAGE_SIZE = 25


class CountedPaginator(Paginator):
    """A Paginator given its count: the list's one statistics query has it already."""

    def __init__(self, object_list, per_page, count: int):
        super().__init__(object_list, per_page)
        self.known_count = count

    @cached_property
    def count(self) -> int:
        return self.known_count


def _list_url(request) -> str:
    return safe_next_url(request, default="todos:list")


def _list_stats(user, todo_filter: TodoFilter) -> dict[str, int]:
    """What the list page derives from the todos, in one query: how many match the filters
    (the count and the empty state), are done (clear-done) and overdue (the summary)."""
    return Todo.objects.for_user(user).aggregate(
        matching=Count("pk", filter=todo_filter.condition())
        if todo_filter.is_active
        else Count("pk"),
        done=Count("pk", filter=Q(status=Todo.Status.DONE)),
        overdue=Count("pk", filter=overdue()),
    )


def _page_filter(request) -> TodoFilter:
    """The filters of the list page an htmx request comes from (its URL, which htmx sends)."""
    params = QueryDict(urlsplit(request.htmx.current_url or "").query)
    category_ids = (
        {category.pk for category in categories_of(request.user)} if "category" in params else set()
    )
    return TodoFilter.from_query(params, category_ids)


def _shown(todo: Todo, todo_filter: TodoFilter) -> bool:
    """Whether the page's filters let the todo appear in its list."""
    if not todo_filter.is_active:
        return True
    return Todo.objects.filter(todo_filter.condition(), pk=todo.pk).exists()


def _htmx_change(request, todo: Todo | None, extra_html: str = "") -> HttpResponse:
    """The answer to an htmx change of one todo: its row (none when it was deleted, or when
    the page's filters hide it), then out of band everything on the page derived from the
    todos (summary, empty state, clear-done), the flash messages and `extra_html`."""
    todo_filter = _page_filter(request)
    html = ""
    if todo is not None:
        if _shown(todo, todo_filter):
            (html,) = rows([todo])
        else:
            messages.info(request, f"“{todo.title}” is not shown: it does not match the filters.")
    state = {"filter": todo_filter, "stats": _list_stats(request.user, todo_filter)}
    html += render_to_string("todos/_list_state.html", state, request=request)
    return HttpResponse(html + extra_html)


@login_required
@require_GET
def todo_list(request):
    categories = categories_of(request.user)
    todo_filter = TodoFilter.from_query(request.GET, {category.pk for category in categories})
    todos = todo_filter.apply(Todo.objects.for_user(request.user))
    stats = _list_stats(request.user, todo_filter)
    page = CountedPaginator(todos, PAGE_SIZE, stats["matching"]).get_page(request.GET.get("page"))
    # Each row's category from the list the page holds already: no join, no model per row.
    by_id = {category.pk: category for category in categories}
    for todo in page:
        if todo.category_id in by_id:
            todo.category = by_id[todo.category_id]
    context = {
        "page": page,
        "rows": rows(list(page)),
        "stats": stats,
        "filter": todo_filter,
        "categories": categories,
        "sort_labels": SORT_LABELS,
        "quick_add": QuickAddForm(user=request.user),
    }
    if request.htmx and request.htmx.target == "todo-list":
        # Keep the address bar shareable, with only the filters in effect.
        query = todo_filter.querystring(page=request.GET.get("page", ""))
        response = render(request, "todos/_list.html", context)
        push_url(response, f"{request.path}?{query}" if query else request.path)
        return response
    return render(request, "todos/list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def todo_create(request):
    """The full form; the list page's quick-add form posts here too (with htmx or without).

    With htmx, a quick-add error re-renders that form in place; without JavaScript it
    opens the full form, bound to what was typed, with the errors next to their fields.
    """
    quick = request.POST.get("form") == "quick" and request.htmx
    form_class = QuickAddForm if quick else TodoForm
    form = form_class(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        todo = form.save()
        messages.success(request, f"Added “{todo.title}”.")
        if request.htmx:
            # The quick-add form comes back empty, out of band, with the row.
            quick_add = render_to_string(
                "todos/_quick_add.html",
                {"quick_add": QuickAddForm(user=request.user), "oob": True},
                request=request,
            )
            return _htmx_change(request, todo, extra_html=quick_add)
        return redirect(_list_url(request))
    if quick:
        # Show the errors in place of the quick-add form instead of adding a row.
        response = render(request, "todos/_quick_add.html", {"quick_add": form})
        return reswap(retarget(response, "#quick-add"), "outerHTML")
    status = 400 if request.method == "POST" else 200
    return render(request, "todos/form.html", {"form": form}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def todo_edit(request, pk):
    todo = get_object_or_404(Todo, pk=pk, user=request.user)
    form = TodoForm(request.POST or None, instance=todo, user=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Saved “{todo.title}”.")
        return redirect(_list_url(request))
    status = 400 if request.method == "POST" else 200
    return render(request, "todos/form.html", {"form": form, "todo": todo}, status=status)


@login_required
@require_POST
def todo_toggle(request, pk):
    todo = get_object_or_404(Todo, pk=pk, user=request.user)
    if todo.is_done:
        todo.reopen()
        messages.info(request, f"Reopened “{todo.title}”.")
    else:
        todo.mark_done()
        messages.success(request, f"Completed “{todo.title}”.")
    todo.save(update_fields=["status", "completed_at", "updated_at"])
    if request.htmx:
        return _htmx_change(request, todo)
    return redirect(_list_url(request))


@login_required
@require_http_methods(["GET", "POST"])
def todo_delete(request, pk):
    todo = get_object_or_404(Todo, pk=pk, user=request.user)
    if request.method == "POST":
        todo.delete()
        messages.success(request, f"Deleted “{todo.title}”.")
        if request.htmx:
            return _htmx_change(request, None)
        return redirect(_list_url(request))
    return render(request, "todos/confirm_delete.html", {"todo": todo})


@login_required
@require_POST
def clear_done(request):
    deleted, _ = Todo.objects.for_user(request.user).filter(status=Todo.Status.DONE).delete()
    messages.success(request, f"Cleared {deleted} done todo{'s' if deleted != 1 else ''}.")
    return redirect(_list_url(request))


@login_required
@require_GET
def export_csv(request):
    categories = {category.pk for category in categories_of(request.user)}
    todo_filter = TodoFilter.from_query(request.GET, categories)
    todos = todo_filter.apply(Todo.objects.for_user(request.user).select_related("category"))
    response = StreamingHttpResponse(todo_csv_rows(todos), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{csv_filename()}"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def category_list(request):
    form = CategoryForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        category = form.save()
        messages.success(request, f"Added category “{category.name}”.")
        return redirect("todos:categories")
    categories = request.user.categories.annotate(todo_count=Count("todos"))
    status = 400 if request.method == "POST" else 200
    return render(
        request, "todos/categories.html", {"form": form, "categories": categories}, status=status
    )


@login_required
@require_http_methods(["GET", "POST"])
def category_edit(request, pk):
    category = get_object_or_404(Category, pk=pk, user=request.user)
    form = CategoryForm(request.POST or None, instance=category, user=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Renamed to “{category.name}”.")
        return redirect("todos:categories")
    status = 400 if request.method == "POST" else 200
    return render(
        request, "todos/category_form.html", {"form": form, "category": category}, status=status
    )


@login_required
@require_http_methods(["GET", "POST"])
def category_delete(request, pk):
    category = get_object_or_404(Category, pk=pk, user=request.user)
    if request.method == "POST":
        category.delete()  # its todos stay, uncategorised (on_delete=SET_NULL)
        messages.success(request, f"Deleted category “{category.name}”; its todos were kept.")
        return redirect("todos:categories")
    todo_count = category.todos.count()
    return render(
        request,
        "todos/category_confirm_delete.html",
        {"category": category, "todo_count": todo_count},
    )
