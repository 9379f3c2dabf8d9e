"""``GET /``: the worker's landing page (``worker/page/``): what is waiting and running, by runner
label and job by job, and the recent failures, refreshed every few seconds from the API
(:mod:`worker.api`). Static files, served with a strict Content-Security-Policy: scripts, styles and
requests of this origin only, no inline script, nothing embeddable."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from shared.http_server import Route

FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/page.js": ("page.js", "text/javascript; charset=utf-8"),
    "/page.css": ("page.css", "text/css; charset=utf-8"),
}
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self';"
    " base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def page_routes() -> dict[str, Route]:
    """The page's routes, its files read now (once per process)."""
    folder = Path(__file__).with_name("page")
    routes: dict[str, Route] = {}
    for path, (name, content_type) in FILES.items():
        body = (folder / name).read_bytes()
        headers = {
            "Content-Type": content_type,
            "Content-Security-Policy": POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        }
        routes[path] = _static(body, headers)
    return routes


def _static(body: bytes, headers: Mapping[str, str]) -> Route:
    def route(_query: Mapping[str, str]) -> tuple[int, bytes, Mapping[str, str]]:
        return 200, body, headers

    return route
