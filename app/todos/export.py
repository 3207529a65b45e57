"""CSV export: UTF-8 with a BOM (so spreadsheets detect it), formula injection escaped."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from django.utils import timezone

from todos.models import Todo

HEADER = [
    "Title",
    "Notes",
    "Status",
    "Priority",
    "Category",
    "Due",
    "Remind at",
    "Created",
    "Completed",
]
# A cell starting with one of these is run as a formula by spreadsheet programs.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_PREFIXES) else value


def _local(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else ""


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def todo_csv_rows(todos: Iterable[Todo]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(HEADER)
    for todo in todos.iterator(chunk_size=500) if hasattr(todos, "iterator") else todos:
        row = [
            todo.title,
            todo.notes,
            "overdue" if todo.shows_overdue else todo.status,
            todo.get_priority_display(),
            todo.category.name if todo.category else "",
            _local(todo.due_at),
            _local(todo.remind_at),
            _local(todo.created_at),
            _local(todo.completed_at),
        ]
        yield writer.writerow([spreadsheet_safe(cell) for cell in row])


def csv_filename() -> str:
    return f"todos-{timezone.localdate():%Y-%m-%d}.csv"
