"""Wiring only: the Chalice app and its blueprints."""

from chalice import Chalice

from chalicelib.api import api
from chalicelib.workers import workers

app = Chalice(app_name="sms-gateway")
app.register_blueprint(api)
app.register_blueprint(workers)
