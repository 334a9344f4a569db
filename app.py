"""Wiring only: the Chalice app and its blueprints."""

from chalice import Chalice

from chalicelib.api import api, json_errors
from chalicelib.workers import workers

app = Chalice(app_name="sms-gateway")
app.register_middleware(json_errors, "http")
app.register_blueprint(api)
app.register_blueprint(workers)
