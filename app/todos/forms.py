from datetime import timedelta

from django import forms

from todos.models import Category, Todo, is_todo_time, validate_todo_time

DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

# Reminder choice -> offset before the due time; "custom" uses the remind_at field.
REMINDER_OFFSETS = {
    "at_due": timedelta(0),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
REMINDER_CHOICES = [
    ("", "No reminder"),
    ("at_due", "When it is due"),
    ("15m", "15 minutes before"),
    ("1h", "1 hour before"),
    ("1d", "1 day before"),
    ("custom", "At a time I choose"),
]


class OwnedByUserForm(forms.ModelForm):
    """A model form for an object of the signed-in user, who owns what it creates."""

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.instance.user = user


class TodoForm(OwnedByUserForm):
    reminder = forms.ChoiceField(choices=REMINDER_CHOICES, required=False)
    remind_at = forms.DateTimeField(
        label="Remind at",
        required=False,
        validators=[validate_todo_time],
        widget=DATETIME_INPUT,
        help_text="For “At a time I choose”.",
    )

    class Meta:
        model = Todo
        fields = ("title", "notes", "due_at", "priority", "category")
        widgets = {
            "due_at": DATETIME_INPUT,
            "notes": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Only the user's own categories are valid choices: another user's id is rejected.
        self.fields["category"].queryset = Category.objects.filter(user=self.user)
        self.fields["category"].empty_label = "No category"
        todo = self.instance
        if todo.pk and not self.is_bound:
            self.initial["reminder"] = self._reminder_choice(todo)
            self.initial["remind_at"] = todo.remind_at

    @staticmethod
    def _reminder_choice(todo: Todo) -> str:
        if todo.remind_before is not None:
            for key, offset in REMINDER_OFFSETS.items():
                if offset == todo.remind_before:
                    return key
        return "custom" if todo.remind_at else ""

    def clean(self):
        cleaned = super().clean()
        reminder = cleaned.get("reminder")
        due_at = cleaned.get("due_at")
        if reminder in REMINDER_OFFSETS and due_at is None and "due_at" not in self.errors:
            self.add_error("due_at", "Set a due time for a reminder relative to it.")
        # The due time's own range is the model's check (after this one).
        offset = REMINDER_OFFSETS.get(reminder)
        if (
            offset
            and due_at is not None
            and is_todo_time(due_at)
            and not is_todo_time(due_at - offset)
        ):
            self.add_error(
                "reminder", "This reminder would fall before 1900: choose a later due time."
            )
        if (
            reminder == "custom"
            and cleaned.get("remind_at") is None
            and "remind_at" not in self.errors
        ):
            self.add_error("remind_at", "Choose when to be reminded.")
        return cleaned

    def save(self, commit=True):
        todo = super().save(commit=False)
        reminder = self.cleaned_data.get("reminder")
        todo.set_schedule(
            self.cleaned_data.get("due_at"),
            remind_at=self.cleaned_data.get("remind_at") if reminder == "custom" else None,
            remind_before=REMINDER_OFFSETS.get(reminder),
        )
        if commit:
            todo.save()
        return todo


class QuickAddForm(OwnedByUserForm):
    """The one-line form at the top of the list: a title, optionally a due time."""

    class Meta:
        model = Todo
        fields = ("title", "due_at", "priority")
        widgets = {
            # `n` focuses it (static/js/app.js reads aria-keyshortcuts; the help page lists it).
            "title": forms.TextInput(
                attrs={"aria-keyshortcuts": "n", "placeholder": "What needs doing?"}
            ),
            "due_at": DATETIME_INPUT,
        }

    def save(self, commit=True):
        todo = super().save(commit=False)
        todo.set_schedule(self.cleaned_data.get("due_at"))
        if commit:
            todo.save()
        return todo


class CategoryForm(OwnedByUserForm):
    class Meta:
        model = Category
        fields = ("name",)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        clash = Category.objects.filter(user=self.user, name__iexact=name)
        if clash.exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("You already have a category with this name.")
        return name
