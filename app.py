"""Wiring only: the Chalice app and its blueprints."""

from chalice import Chalice

from chalicelib.api import api, json_errors
from chalicelib.observability import observe
from chalicelib.workers import workers

app = Chalice(app_name="sms-gateway")
# Registered first, so it is the outermost: it sees every function's final answer.
app.register_middleware(observe, "all")
app.register_middleware(json_errors, "http")
app.register_blueprint(api)
app.register_blueprint(workers)
