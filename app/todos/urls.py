from django.urls import path

from todos import views

app_name = "todos"

urlpatterns = [
    path("", views.todo_list, name="list"),
    path("todos/new/", views.todo_create, name="create"),
    path("todos/<int:pk>/edit/", views.todo_edit, name="edit"),
    path("todos/<int:pk>/toggle/", views.todo_toggle, name="toggle"),
    path("todos/<int:pk>/delete/", views.todo_delete, name="delete"),
    path("todos/clear-done/", views.clear_done, name="clear_done"),
    path("todos/export.csv", views.export_csv, name="export"),
    path("categories/", views.category_list, name="categories"),
    path("categories/<int:pk>/edit/", views.category_edit, name="category_edit"),
    path("categories/<int:pk>/delete/", views.category_delete, name="category_delete"),
]
