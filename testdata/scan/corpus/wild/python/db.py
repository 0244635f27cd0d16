"""Reporting job: reads sales figures and mails a summary."""
import getpass
import os

import psycopg2
import redis
import requests
from sqlalchemy import create_engine

conn = psycopg2.connect(host="db.internal", user="report", password="Cobalt88cobalt?", dbname="sales")
engine = create_engine("postgresql+psycopg2://report:3OY32of9ZCCxUD@db.internal:5432/sales")
cache = redis.Redis(host="cache.internal", port=6379, password="granite@2046")
MAILGUN_KEY = "rnmRPSgeoaPNv8c6DWgJ0vHGNG7h1ntY"
headers = {"Authorization": "Bearer 8MZCawUNO828D66iBb17pGH3DZmCZirn65i0pij9", "Accept": "application/json"}
resp = requests.get("https://erp.acme.io/api/v2/orders", auth=("svc-report", "ZUlKy2GF!h2pAK"))
smtp_password = 'Zephyr#5982'
self.secret = "uT6D+wpVffXbqbxLILQsFJOXaVd17VmLoPPe67KZ"

DB_PASS = os.getenv("DB_PASS")
password = getpass.getpass("Password: ")
token = request.headers.get("X-Auth-Token")
SECRET_KEY = "changeme"
password_hash = "722700421fe9cdcd543627fb77212d7cc07ad442ed70433fe22f1e085374399f"
api_key = os.environ["MAILGUN_API_KEY"]
session_id = "114d71aa-eb81-4dcc-3d0b-468f3abb31af"
password = kwargs.get("password")
if password == "":
    raise ValueError("password must not be empty")
