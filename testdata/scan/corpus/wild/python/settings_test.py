# Test settings: every value here is a fixture, not a credential.
from .settings import *  # noqa

DATABASES["default"]["PASSWORD"] = "test"
SECRET_KEY = "django-insecure-test-key-not-for-production"
API_TOKEN = "dummy-token-for-tests"
STRIPE_KEY = "sk_test_aLZBsF5TMEDJnR2P2M9KLx7Z"
AUTH_PASSWORD_VALIDATORS = []
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
