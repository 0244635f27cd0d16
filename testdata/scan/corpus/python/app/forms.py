import secrets

import jwt
from django import forms
from django.conf import settings


class LoginForm(forms.Form):
    username = forms.CharField(max_length=150)
    password = forms.CharField(widget=forms.PasswordInput)


def issue(payload):
    token = jwt.encode(payload, settings.SECRET_KEY, algorithm="HS256")
    secret = secrets.token_urlsafe(32)
    api_key = "ak_" + secrets.token_hex(16)
    return token, secret, api_key
