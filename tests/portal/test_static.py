"""htmx is served from the app, pinned, with its licence; pages load nothing from another host."""

import hashlib

import httpx

from partnermatch.portal.templating import HTMX, STATIC

# sha256 of dist/htmx.min.js in the npm package htmx.org@2.0.11
# (https://registry.npmjs.org/htmx.org/-/htmx.org-2.0.11.tgz, integrity
# sha512-Thx/WtpeOQqSrqBCw/A1cwGJGg4UrVa3+sW0GmrM3p4gJgO89ecH4qtbnyzDDWFvBTqjnIMCgELTNt636dtamA==).
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"


def test_the_htmx_file_is_the_pinned_release_with_its_licence() -> None:
    assert HTMX == "htmx-2.0.11.min.js"
    assert hashlib.sha256((STATIC / HTMX).read_bytes()).hexdigest() == HTMX_SHA256
    licence = (STATIC / "htmx-2.0.11.LICENSE.txt").read_text()
    assert "Zero-Clause BSD" in licence


async def test_static_files_are_served_and_cached(anonymous_client: httpx.AsyncClient) -> None:
    script = await anonymous_client.get(f"/static/{HTMX}")
    assert script.status_code == 200
    assert hashlib.sha256(script.content).hexdigest() == HTMX_SHA256
    assert "max-age=3600" in script.headers["cache-control"]
    page = await anonymous_client.get("/", headers={"Accept": "text/html"})
    assert f'src="/static/{HTMX}"' in page.text
    assert 'href="/static/portal.css"' in page.text
