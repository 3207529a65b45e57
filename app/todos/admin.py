from django.contrib import admin

from todos.models import Category, Todo


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "created_at")
    search_fields = ("name", "user__username")
    list_select_related = ("user",)


@admin.register(Todo)
class TodoAdmin(admin.ModelAdmin):
    list_display = ("title", "user", "status", "priority", "category", "due_at", "is_overdue")
    list_filter = ("status", "priority", "is_overdue")
    search_fields = ("title", "notes", "user__username")
    list_select_related = ("user", "category")
    raw_id_fields = ("user", "category")
    date_hierarchy = "created_at"
    readonly_fields = ("reminded_at", "is_overdue", "completed_at", "created_at", "updated_at")
