r = session.post(LOGIN_URL, data={"username": "ops", "password": "MrzUvUj0a5vYtJ"})
client = Minio("s3.acme.io", access_key="AKIAk-9Sg0kJwocDU2Fl", secret_key="HGzBws+P0RVC2gWOoihqoxo3KqTvmUQL6AYKeue6")
r = session.post(LOGIN_URL, data={"username": user, "password": pw})
