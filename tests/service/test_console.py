"""The console's pages and its sign-in and CSRF rules, over the ASGI app (the browser tests in
tests/e2e/test_console_browser.py click through the same pages in Chromium)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from tests.service.conftest import Build
from tests.support.backends import ScriptedBackend
from tests.support.repo import GitRepo, rules_text
from trigger_service.api import create_app
from trigger_service.database import events
from trigger_service.service import Services

AUTH = {"Authorization": "Bearer manual-token"}


@pytest.fixture
def services(build: Build) -> Services:
    return build()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services, start_worker=False), base_url="http://console.test") as c:
        yield c


def sign_in(client: TestClient, token: str = "manual-token") -> str:
    """Sign in; returns the CSRF token of the session."""
    answer = client.post(
        "/ui/signin", data={"token": token, "next": "/ui/rules"}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    page = client.get("/ui/rules").text
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    assert match, "a signed-in page carries the CSRF token"
    return match.group(1)


def test_pages_render_with_data(
    client: TestClient, services: Services, backend: ScriptedBackend
) -> None:
    stored = client.post("/trigger", json={"pipeline": "songs", "reason": "look"}, headers=AUTH)
    event_id = stored.json()["accepted"][0]
    services.worker.run_until_idle()
    timeline = client.get("/ui")
    assert timeline.status_code == 200 and event_id in timeline.text
    assert "manual run: look" in timeline.text
    (decision_id,) = client.get(f"/events/{event_id}").json()["decisions"]
    decision = client.get(f"/ui/decisions/{decision_id}").text
    assert "by-hand" in decision and "the service (lineage)" in decision
    assert "pipeline songs default" in decision  # data_uri came from the pipeline's defaults
    # queue-one with this decision's run still active: a second one now would queue.
    assert "If admitted now: <strong>queue</strong>" in decision, decision[
        decision.find("<h2>Policy") :
    ][:900]
    run_id = client.get(f"/decisions/{decision_id}").json()["run_id"]
    run = client.get(f"/ui/runs/{run_id}").text
    assert "State history" in run and "submitting" in run
    for path in ("/ui/runs", "/ui/models", "/ui/pipelines", "/ui/rules", "/ui/dead"):
        assert client.get(path).status_code == 200, path
    assert client.get("/ui/runs/r-nope").status_code == 404
    filtered = client.get("/ui", params={"outcome": "dead", "partial": "1"}).text
    assert event_id not in filtered and "match these filters" in filtered
    found = client.get("/ui", params={"q": event_id[-8:], "partial": "1"}).text
    assert event_id in found and "<html" not in found
    assert client.get("/ui", params={"q": "100%_\\"}).status_code == 200


def test_actions_need_a_session_and_its_csrf_token(client: TestClient) -> None:
    assert client.post("/ui/triggers/code/pause", data={}).status_code == 403
    wrong = client.post("/ui/signin", data={"token": "nope"}, follow_redirects=False)
    assert wrong.status_code == 401 and "wrong token" in wrong.text
    csrf = sign_in(client)
    assert client.post("/ui/triggers/code/pause", data={}).status_code == 403, "no CSRF token"
    assert client.post("/ui/triggers/code/pause", data={"csrf": "0" * 64}).status_code == 403
    other_site = client.post(
        "/ui/triggers/code/pause", data={"csrf": csrf}, headers={"Origin": "https://evil.test"}
    )
    assert other_site.status_code == 403
    done = client.post(
        "/ui/triggers/code/pause",
        data={"csrf": csrf, "reason": "<script>x</script>"},
        headers={"Origin": "http://console.test"},
    )
    assert done.status_code == 200 and "code: paused" in done.text
    assert "<script>x</script>" not in done.text and "&lt;script&gt;" in done.text
    assert client.get("/rules").json()["triggers"][0]["paused"] is True
    # A session cookie forged or signed with another token is no session.
    client.cookies.set("trigger_console", "1.2.3", path="/ui")
    assert client.post("/ui/triggers/code/resume", data={"csrf": csrf}).status_code == 403


def test_sign_in_redirects_only_into_the_console(client: TestClient) -> None:
    for target in ("https://evil.test/", "//evil.test/ui", "/docs"):
        answer = client.post(
            "/ui/signin", data={"token": "manual-token", "next": target}, follow_redirects=False
        )
        assert answer.headers["location"] == "/ui", target


def test_without_an_operator_token_sign_in_is_refused_unless_in_development(build: Build) -> None:
    closed = build(manual_token=None)
    with TestClient(create_app(closed, start_worker=False)) as client:
        answer = client.post("/ui/signin", data={"token": ""}, follow_redirects=False)
        assert answer.status_code == 401
    open_dev = build(manual_token=None, allow_unauthenticated=True)
    with TestClient(create_app(open_dev, start_worker=False)) as client:
        answer = client.post("/ui/signin", data={"token": ""}, follow_redirects=False)
        assert answer.status_code == 303
        page = client.get("/ui/rules").text
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
        assert csrf is not None
        done = client.post("/ui/triggers/drift/pause", data={"csrf": csrf.group(1)})
        assert done.status_code == 200 and "drift: paused" in done.text


def test_a_cookie_signed_with_an_old_token_is_no_session(build: Build) -> None:
    first = build()
    with TestClient(create_app(first, start_worker=False)) as client:
        sign_in(client)
        cookie = client.cookies.get("trigger_console")
    assert cookie
    with TestClient(create_app(build(), start_worker=False)) as client:  # another replica
        client.cookies.set("trigger_console", cookie, path="/ui")
        assert 'action="/ui/signout"' in client.get("/ui/rules").text
    rotated = build(manual_token="a-new-token")
    with TestClient(create_app(rotated, start_worker=False)) as client:
        client.cookies.set("trigger_console", cookie, path="/ui")
        assert 'action="/ui/signout"' not in client.get("/ui/rules").text


def test_a_message_shows_only_when_the_console_wrote_it(client: TestClient) -> None:
    """A link such as /ui?msg=... from elsewhere cannot make the console say what it likes."""
    forged = "Session expired: sign in again at https://evil.test"
    assert forged not in client.get("/ui", params={"msg": forged}).text
    assert forged not in client.get("/ui", params={"msg": forged, "sig": "0" * 64}).text
    csrf = sign_in(client)
    done = client.post("/ui/triggers/drift/pause", data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303 and "sig=" in done.headers["location"]
    assert 'role="status">drift: paused<' in client.get(done.headers["location"]).text
    # The signature covers the text: the same signature with other words shows nothing.
    sig = re.search(r"sig=([0-9a-f]+)", done.headers["location"])
    assert sig is not None
    assert forged not in client.get("/ui/rules", params={"msg": forged, "sig": sig[1]}).text


def test_ten_thousand_events_page_a_hundred_at_a_time(
    client: TestClient, services: Services
) -> None:
    """The timeline reads one page through the index: 10,000 stored events answer at once, and
    the older ones are reachable page by page, filters kept."""
    now = time.time()
    rows = [
        {
            "id": f"storage-{n:05d}",
            "source": "storage",
            "kind": "data",
            "subject": {"bucket": "b", "key": f"k/{n}.csv", "event_name": "put"},
            "received_at": now - n,
            "status": "decided",
        }
        for n in range(10_000)
    ]
    with services.engine.begin() as conn:
        conn.execute(insert(events), rows)
    started = time.perf_counter()
    first = client.get("/ui", params={"source": "storage"})
    took = time.perf_counter() - started
    assert first.status_code == 200 and took < 3, took
    assert "storage-00000" in first.text and "storage-00099" in first.text
    assert "storage-00100" not in first.text
    older = re.search(r'href="(/ui\?[^"]*page=1[^"]*)" id="older"', first.text)
    assert older is not None and "source=storage" in older[1]
    second = client.get(older[1].replace("&amp;", "&")).text
    assert "storage-00100" in second and "storage-00199" in second
    assert "storage-00099" not in second and 'id="newest"' in second
    last = client.get("/ui", params={"source": "storage", "page": "99"}).text
    assert "storage-09999" in last and 'id="older"' not in last
    assert client.get("/ui", params={"page": "-1"}).status_code == 200
    assert client.get("/ui", params={"page": "9" * 40}).status_code == 200


def test_the_pipelines_page_names_the_source_of_each_kind(build: Build, repo: GitRepo) -> None:
    """A `module:` source (the embedded default's) read "(branch main, None)"."""
    compiled = build()
    with TestClient(create_app(compiled, start_worker=False)) as client:
        line = client.get("/ui/pipelines").text
        assert "compiled pipeline <code>pipeline.yaml</code>" in line and "None" not in line
    module_rules = rules_text(repo.url).replace(
        "package_path: pipeline.yaml",
        'module: pipeline\n      image_template: "localhost/pipeline:{commit}"',
    )
    built = build(rules=module_rules)
    with TestClient(create_app(built, start_worker=False)) as client:
        page = client.get("/ui/pipelines").text
        assert "module <code>pipeline</code>, compiled at each commit" in page
        assert "None" not in page


def test_the_cookie_is_secure_behind_a_tls_terminating_ingress(client: TestClient) -> None:
    """The ingress speaks plain HTTP to the pod and says X-Forwarded-Proto: https; uvicorn only
    believes that header from 127.0.0.1, so the URL's scheme alone left the cookie not Secure."""
    plain = client.post("/ui/signin", data={"token": "manual-token"}, follow_redirects=False)
    assert "secure" not in plain.headers["set-cookie"].lower()
    behind = client.post(
        "/ui/signin",
        data={"token": "manual-token"},
        headers={"X-Forwarded-Proto": "https"},
        follow_redirects=False,
    )
    assert behind.status_code == 303 and "; secure" in behind.headers["set-cookie"].lower()
