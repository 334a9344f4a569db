"""Checks answers against the OpenAPI document the API serves."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from chalicelib.http.routes import openapi_spec


@cache
def _spec() -> dict[str, Any]:
    return openapi_spec()


def _template(path: str) -> str | None:
    for template in _spec()["paths"]:
        pattern = "^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path):
            return str(template)
    return None


def check_answer(method: str, path: str, status: int, body: bytes) -> None:
    """Raise AssertionError if the answer is not what the document promises.

    Unknown paths and methods (the JSON 404/405 of the catch-all) are not
    operations of the document and are not checked here.
    """
    template = _template(path.split("?", 1)[0])
    operation = _spec()["paths"].get(template or "", {}).get(method.lower())
    if operation is None:
        return
    responses = operation["responses"]
    assert str(status) in responses, f"{method} {template} answered {status}, not documented"
    content = responses[str(status)].get("content", {}).get("application/json")
    if content is None:
        return
    schema = {**content["schema"], "components": _spec()["components"]}
    errors = list(Draft202012Validator(schema).iter_errors(json.loads(body)))
    assert not errors, f"{method} {template} {status}: {errors[0].message}"


class CheckedHttp:
    """Wraps chalice.test's HTTP client; every answer is checked against the document."""

    def __init__(self, http: Any) -> None:
        self._http = http

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                body: bytes = b"") -> Any:
        response = self._http.request(method, path, headers=headers or {}, body=body)
        check_answer(method, path, response.status_code, response.body)
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)
