"""The web console's static files: only the whitelisted ones, with the console's headers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.http import console

pytestmark = pytest.mark.functional

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'")


@pytest.fixture
def vendor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A vendor directory of this test's own (empty: make console has not run)."""
    monkeypatch.setattr(console, "VENDOR_DIR", tmp_path)
    return tmp_path


def _error_code(response: Any) -> str:
    assert response.headers["Content-Type"].startswith("application/json")
    return str(json.loads(response.body)["error"]["code"])


def test_the_page_is_html_behind_a_strict_content_security_policy(api: Any) -> None:
    response = api.http.get("/console")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    page = response.body.decode()
    assert 'data-testid="signin-key"' in page
    # The CSP forbids inline code: every script and style is a file of the console.
    assert "<style" not in page and " style=" not in page and "<script>" not in page


@pytest.mark.parametrize(("name", "content_type"), [
    ("console.js", "text/javascript; charset=utf-8"),
    ("console.css", "text/css; charset=utf-8"),
    ("chart.js", "text/javascript; charset=utf-8"),
])
def test_each_whitelisted_file_has_its_content_type(api: Any, vendor: Path, name: str,
                                                    content_type: str) -> None:
    (vendor / "chart.umd.min.js").write_text("/* Chart.js */")
    response = api.http.get(f"/console/{name}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.body


@pytest.mark.parametrize("path", [
    "/console/index.htm", "/console/app.py", "/console/..%2Fapp.py", "/console/vendor%2F..%2F..",
    "/console/%2E%2E", "/console/chart.umd.min.js", "/console/vendor%2Fchart.umd.min.js",
])
def test_any_other_name_is_the_apis_json_404(api: Any, path: str) -> None:
    response = api.http.get(path)
    assert response.status_code == 404
    assert _error_code(response) == "not_found"


def test_the_chart_is_a_503_until_make_console_has_run(api: Any, vendor: Path) -> None:
    response = api.http.get("/console/chart.js")
    assert response.status_code == 503
    assert _error_code(response) == "console_not_built"
    assert json.loads(response.body)["error"]["message"] == "run make console"
    assert api.http.get("/console").status_code == 200  # the page itself still loads


def test_a_trailing_slash_is_sent_to_the_page_its_links_are_relative_to(api: Any) -> None:
    response = api.http.get("/console/")
    assert response.status_code == 301
    assert response.headers["Location"] == "../console"  # relative: a stage prefix stays
    assert response.body in (b"", "")


@pytest.mark.parametrize(("path", "status"), [
    ("/console", 200), ("/console/console.js", 200), ("/console/index.htm", 404)])
def test_head_answers_the_headers_of_get_without_a_body(api: Any, path: str,
                                                        status: int) -> None:
    got, head = api.http.get(path), api.http.request("HEAD", path)
    assert (head.status_code, got.status_code) == (status, status)
    assert head.headers["Content-Type"] == got.headers["Content-Type"]
    assert head.body in (b"", "") and got.body
