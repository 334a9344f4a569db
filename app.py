"""Wiring only: the Chalice app, its middleware and its blueprints."""

from chalice import Chalice

from chalicelib import observability
from chalicelib.container import get_container
from chalicelib.http.console import console
from chalicelib.http.errors import json_errors
from chalicelib.http.routes import api
from chalicelib.workers import workers

app = Chalice(app_name="sms-gateway")
# Registered first, so it is the outermost: it sees every function's final answer.
# The container is asked per invocation, never at import.
app.register_middleware(observability.middleware(lambda: get_container().observability_config()),
                        "all")
app.register_middleware(json_errors, "http")
app.register_blueprint(api)
app.register_blueprint(console)
app.register_blueprint(workers)
