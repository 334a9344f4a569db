"""The web console: a static single-page app served from the package, behind a strict CSP.

Only the files named in ``ASSETS`` are served; any other name is the API's JSON 404, so no
request path ever reaches the file system. Chart.js is copied in by ``make console``; without
it the chart asset answers 503 and the page says that charts are unavailable.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from chalice import Blueprint, Response

from chalicelib.domain.errors import NotFoundError
from chalicelib.http.errors import error_response
from chalicelib.http.presenters import json_response

console = Blueprint(__name__)

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
VENDOR_DIR = CONSOLE_DIR / "vendor"

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


class Asset(NamedTuple):
    """A file the console serves: where it lives and how it is typed."""

    directory: str  # "app" (the console's own files) or "vendor" (make console's copies)
    filename: str
    content_type: str


INDEX = Asset("app", "index.html", "text/html; charset=utf-8")
# The URL name after /console/ -> the file. Nothing else is served.
ASSETS: dict[str, Asset] = {
    "console.css": Asset("app", "console.css", "text/css; charset=utf-8"),
    "console.js": Asset("app", "console.js", "text/javascript; charset=utf-8"),
    "chart.js": Asset("vendor", "chart.umd.min.js", "text/javascript; charset=utf-8"),
}


def _path_of(asset: Asset) -> Path:
    # Looked up per call (not bound at import), so tests can point VENDOR_DIR elsewhere.
    return (VENDOR_DIR if asset.directory == "vendor" else CONSOLE_DIR) / asset.filename


def serve(asset: Asset) -> Response:
    """The file's contents with the console's headers; 503 when make console has not run."""
    path = _path_of(asset)
    if not path.is_file():
        return json_response({"error": {"code": "console_not_built", "message": "run make console"}},
                             503, SECURITY_HEADERS)
    return Response(body=path.read_text(encoding="utf-8"), status_code=200,
                    headers={"Content-Type": asset.content_type, **SECURITY_HEADERS})


def _answer(response: Response) -> Response:
    """``response`` as the request's method wants it: HEAD gets the headers alone."""
    request = console.current_request
    if request is not None and request.method == "HEAD":
        return Response(body="", status_code=response.status_code, headers=response.headers)
    return response


@console.route("/console", methods=["GET", "HEAD"])
def console_page() -> Response:
    request = console.current_request
    if request is not None and str(request.context.get("path", "")).endswith("/"):
        # The page's links are relative to /console: from /console/ they would miss. A
        # relative Location keeps any stage prefix (API Gateway's /api) in front.
        return _answer(Response(body="", status_code=301,
                                headers={"Location": "../console", **SECURITY_HEADERS}))
    return _answer(serve(INDEX))


@console.route("/console/{asset}", methods=["GET", "HEAD"])
def console_asset(asset: str) -> Response:
    known = ASSETS.get(asset)
    if known is None:
        return _answer(error_response(NotFoundError(f"no console file {asset!r}")))
    return _answer(serve(known))
