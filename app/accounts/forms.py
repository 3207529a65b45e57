from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.forms import UserCreationForm
from django.db import transaction

from accounts.models import User, time_zone_choices


class SignUpForm(UserCreationForm):
    email = forms.EmailField(required=True, help_text="For password resets and reminders.")

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")

    def clean_email(self):
        email = self.cleaned_data["email"]
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email already exists.")
        return email


class ProfileForm(forms.ModelForm):
    time_zone = forms.ChoiceField(choices=time_zone_choices, required=False)

    class Meta:
        model = User
        fields = ("display_name", "email", "time_zone", "email_reminders")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [("", "Site default"), *time_zone_choices()]

    def clean_email(self):
        email = self.cleaned_data["email"]
        taken = User.objects.filter(email__iexact=email).exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError("An account with this email already exists.")
        return email


class QueuedPasswordResetForm(auth_forms.PasswordResetForm):
    """Django's reset form, whose email the worker sends after commit (accounts.tasks).

    The request only queues the address, known or not, so both answers take the same time
    and none waits on SMTP. The view's options (templates, request, use_https) are not
    passed on: the worker uses Django's default templates and DJANGO_SITE_URL for the link.
    """

    def save(self, **view_options):
        from accounts.tasks import send_password_reset_email

        email = self.cleaned_data["email"]
        # robust: a broker outage must not turn the answer into a 500 (which would tell too).
        transaction.on_commit(lambda: send_password_reset_email.delay(email), robust=True)
