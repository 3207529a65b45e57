from django.contrib import admin

from todos.models import Category, Todo


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "created_at")
    search_fields = ("name", "user__username")
    list_select_related = ("user",)


class OverdueFilter(admin.SimpleListFilter):
    """Overdue is derived (open and past due), so it filters like the app's own list."""

    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.overdue()
        if self.value() == "no":
            return queryset.exclude(pk__in=Todo.objects.overdue())
        return queryset


@admin.register(Todo)
class TodoAdmin(admin.ModelAdmin):
    list_display = ("title", "user", "status", "priority", "category", "due_at", "overdue")
    list_filter = ("status", "priority", OverdueFilter)
    search_fields = ("title", "notes", "user__username")
    list_select_related = ("user", "category")
    raw_id_fields = ("user", "category")
    date_hierarchy = "created_at"
    readonly_fields = ("reminded_at", "completed_at", "created_at", "updated_at")

    @admin.display(boolean=True, description="overdue")
    def overdue(self, todo: Todo) -> bool:
        return todo.shows_overdue
