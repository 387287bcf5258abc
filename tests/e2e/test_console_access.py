"""The ML console's Jobs and Users pages as an admin, and what the other roles see: an annotator sees none of the
console (no link, each page says it is not for them) and gets 403 from its routes; a reviewer sees the dashboard
only."""
from __future__ import annotations

import pytest

from .console_support import console, shoot  # noqa: F401 (fixture)
from ..support.browser import login_api, wait_for

pytestmark = pytest.mark.e2e

PAGES = ("dashboard", "gallery", "exports", "models", "jobs", "users")


def _queued_job(live, kind: str, user: str) -> str:
    """A job row that waits in the queue (never dispatched), as a busy worker would leave it."""
    from sqlalchemy import select

    from backend.db.extensions import db
    from backend.db.models import Job, User

    with live.app.app_context():
        uid = db.session.scalar(select(User.id).where(User.username == user))
        job = Job(kind=kind, params={}, created_by=uid, status="queued", total=100, progress=0)
        db.session.add(job)
        db.session.commit()
        return job.id


def test_annotator_sees_no_console_and_gets_403(console, page):
    _, token = console.user("ann2", "annotator")
    ann = console.client(token)
    for method, url, body in [
        ("get", "/api/v1/exports", None), ("post", "/api/v1/exports", {}), ("get", "/api/v1/users", None),
        ("post", "/api/v1/users", {"username": "x", "password": "password123"}), ("get", "/api/v1/dataset/overview", None),
        ("get", "/api/v1/dataset/concentration", None), ("post", "/api/v1/dataset/bulk", {"image_ids": [1], "action": "requeue"}),
        ("post", "/api/v1/models/train", {"kind": "segmenter", "export_id": "x"}), ("post", "/api/v1/models/prefill", {}),
        ("get", "/api/v1/stats", None),
    ]:
        resp = getattr(ann, method)(url, **({"json": body} if body is not None else {}))
        assert resp.status_code == 403, (url, resp.status_code)

    login_api(page, console, "ann")
    page.goto(console.url + "/#/")
    page.wait_for_selector("[data-testid=next-image]")
    assert page.locator("[data-testid=console-link]").count() == 0
    for name in PAGES:
        page.goto(f"{console.url}/#/{name}")
        page.wait_for_selector("[data-testid=not-allowed]")
        assert page.locator(".c-tab").count() == 0
    shoot(page, "annotator-refused")
    assert not page.js_errors, page.js_errors


def test_reviewer_sees_the_dashboard_only(console, page):
    login_api(page, console, "rev")
    page.goto(console.url + "/#/")
    page.click("[data-testid=console-link]")
    page.wait_for_selector("[data-testid=tiles]")
    assert [t.strip() for t in page.locator(".c-tab").all_inner_texts()] == ["Dashboard"]
    page.goto(console.url + "/#/users")
    page.wait_for_selector("[data-testid=not-allowed]")


def test_jobs_page_lists_live_and_cancels(console, page):
    waiting = _queued_job(console, "export", "ml")
    other = _queued_job(console, "prefill", "rev")
    login_api(page, console, "ml")
    page.goto(console.url + "/#/jobs")
    row = page.locator(f"tr[data-job-id='{waiting}']")
    row.wait_for()
    assert "ml" in row.inner_text() and "queued" in row.inner_text().lower()
    assert "rev" in page.locator(f"tr[data-job-id='{other}']").inner_text()

    # a job that appears and moves on while the page is open shows up without a reload
    late = _queued_job(console, "train", "ml")
    page.locator(f"tr[data-job-id='{late}']").wait_for(timeout=15_000)
    from backend.db.extensions import db
    from backend.db.models import Job

    with console.app.app_context():
        job = db.session.get(Job, late)
        job.status, job.progress = "running", 40
        db.session.commit()
    page.wait_for_selector(f"tr[data-job-id='{late}'][data-status=running]", timeout=15_000)
    assert "40 / 100" in page.inner_text(f"tr[data-job-id='{late}']")
    shoot(page, "jobs")

    row.locator("[data-testid=cancel-job]").click()
    page.wait_for_selector(f"tr[data-job-id='{waiting}'][data-status=cancelled]")
    with console.app.app_context():
        assert db.session.get(Job, waiting).status == "cancelled"

    # a job's parameters and result open below its id and stay open through the page's refreshes
    page.click(f"tr[data-job-id='{waiting}'] .job-more summary")
    page.wait_for_timeout(2500)
    more = page.locator(f"tr[data-job-id='{waiting}'] .job-more")
    assert more.get_attribute("open") is not None and '"params"' in more.inner_text()

    page.select_option("select[name=kind]", "prefill")
    page.wait_for_function("() => document.querySelectorAll('tr[data-job-id]').length === 1")
    assert page.locator(f"tr[data-job-id='{other}']").count() == 1
    assert not page.js_errors, page.js_errors


def test_users_page_create_role_password_tokens(console, page):
    admin = console.client(console.user("ml2", "admin")[1])
    login_api(page, console, "ml")
    page.goto(console.url + "/#/users")
    page.wait_for_selector("[data-testid=users-table]")
    form = page.locator("form[aria-label='New user']")
    form.locator("input[name=username]").fill("newbie")
    form.locator("input[name=password]").fill("short")
    form.locator("[data-testid=create-user]").click()
    assert page.locator("tr[data-user=newbie]").count() == 0  # the browser's own check stops a short password
    form.locator("input[name=password]").fill("longenough1")
    form.locator("select[name=role]").select_option("reviewer")
    form.locator("[data-testid=create-user]").click()
    row = page.locator("tr[data-user=newbie]")
    row.wait_for()
    assert row.locator("select").input_value() == "reviewer"

    row.locator("[data-testid=role-select]").select_option("annotator")
    page.wait_for_function("() => document.querySelector('tr[data-user=newbie] select').value === 'annotator' && document.querySelector('.toast-ok')")
    users = {u["username"]: u for u in admin.get("/api/v1/users").get_json()["items"]}
    assert users["newbie"]["role"] == "annotator"

    # reset the password: the new one logs in
    row.get_by_text("Reset password").click()
    page.fill("[data-testid=new-password]", "brandnew123")
    page.click("dialog [data-value=true]")
    wait_for(lambda: console.app.test_client().post("/api/v1/auth/login", json={"username": "newbie", "password": "brandnew123"}).status_code == 200, timeout=10)

    # a token made for them works until it is revoked from the page
    secret = admin.post("/api/v1/auth/tokens", json={"user_id": users["newbie"]["id"], "name": "labelling script"}).get_json()["token"]
    assert console.client(secret).get("/api/v1/auth/me").status_code == 200
    row.locator("[data-testid=show-tokens]").click()
    panel = page.locator("[data-testid=tokens-panel]")
    panel.get_by_text("labelling script").wait_for()
    shoot(page, "users")
    panel.locator("[data-testid=revoke-token]").click()
    page.wait_for_function("() => !document.querySelector('[data-testid=revoke-token]')")
    assert console.client(secret).get("/api/v1/auth/me").status_code == 401

    # deactivate: they can no longer log in
    row.get_by_text("Deactivate").click()
    page.wait_for_selector("tr[data-user=newbie].inactive")
    assert console.app.test_client().post("/api/v1/auth/login", json={"username": "newbie", "password": "brandnew123"}).status_code == 401
    # an admin cannot lock themselves out: the page says why
    page.locator("tr[data-user=ml] [data-testid=role-select]").select_option("annotator")
    page.wait_for_selector(".toast-error")
    assert page.locator("tr[data-user=ml] select").input_value() == "admin"
    assert not [e for e in page.js_errors if "409" not in e], page.js_errors
