import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "zpemYzFBikKRfWJhcAWRGTYEVg8qCI7f0jWGbWlaL0KQnmNZ2z"

DEBUG = os.environ.get("DEBUG", "false") == "true"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "shop",
        "USER": "shop",
        "PASSWORD": "XaA0DYzCsKsObIWZNI",
        "HOST": os.environ.get("DB_HOST", "localhost"),
    }
}

AWS_ACCESS_KEY_ID = "AKIAP2FRHPMJSBWXWRYF"
AWS_SECRET_ACCESS_KEY = "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"
AWS_STORAGE_BUCKET_NAME = "acme-static"

EMAIL_HOST_PASSWORD = os.environ["EMAIL_HOST_PASSWORD"]
STATIC_URL = "/static/"
