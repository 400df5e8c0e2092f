"""The portal in a real browser: Debian's Chromium driven by Playwright against the real server (granian)
on loopback, with the default Secure cookies, htmx and the CSRF tokens as a person meets them.

A company registers in German with the sector picker, confirms its address by the emailed link, staff
approve it by the API, its member signs in, acts on recommendations, switches languages, edits the
profile, consents to the weekly digest, gets it, follows a lead from it and unsubscribes by its link,
and signs out; colleagues are invited, a password is reset, a bad entry keeps what was typed.
Every page is checked at 375 px for horizontal scrolling and by axe-core for serious or critical
violations, and screenshotted into var/screenshots/ (both languages, desktop and phone width).

Without Chromium or Playwright the module is skipped with the reason; with CI=true that fails instead.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import sync_playwright

from partnermatch.accounts.service import AccountService
from partnermatch.datasets.importer import import_dataset
from partnermatch.db import migrate, session_scope
from partnermatch.enums import UserRole
from partnermatch.recommendations.registry import ModelRegistry
from partnermatch.settings import Settings
from tests.recommendations.conftest import Trial

CHROMIUM = Path("/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
PASSWORD = "browser-test-passphrase-7"


def _require_browser() -> None:
    if not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
        if IN_CI:
            pytest.fail(f"{reason}; CI=true requires the browser tests", pytrace=False)
        pytest.skip(reason)


@dataclass(frozen=True)
class Server:
    url: str
    settings: Settings
    staff_token: str

    def mail_to(self, address: str) -> str:
        """The newest mail to ``address`` in the development mail folder."""
        for _ in range(50):
            found = [
                message_from_bytes(p.read_bytes())
                for p in sorted((self.settings.var_dir / "mail").glob("*.eml"))
            ]
            found = [m for m in found if m["To"] == address]
            if found:
                body = found[-1].get_payload(decode=True)
                assert isinstance(body, bytes)
                return body.decode()
            time.sleep(0.1)
        raise AssertionError(f"no mail to {address}")

    def message_to(self, address: str) -> EmailMessage:
        """The newest mail to ``address``, whole (a digest has a text and an HTML part)."""
        for _ in range(100):
            found = [
                message_from_bytes(p.read_bytes(), policy=default_policy)
                for p in sorted((self.settings.var_dir / "mail").glob("*.eml"))
            ]
            found = [m for m in found if m["To"] == address]
            if found:
                message = found[-1]
                assert isinstance(message, EmailMessage)
                return message
            time.sleep(0.1)
        raise AssertionError(f"no mail to {address}")

    def rows(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        database = self.settings.resolved_database_url.split("///", 1)[1]
        with sqlite3.connect(database) as connection:
            return connection.execute(query, args).fetchall()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _prepare(settings: Settings, trial: Trial) -> str:
    await migrate(settings)
    async with session_scope(settings) as session:
        await import_dataset(session, trial.dataset)
        await ModelRegistry(session).register(trial.trained.metadata, str(trial.trained.path))
        accounts = AccountService(session, settings=settings)
        staff = await accounts.create_user(
            f"staff-{uuid.uuid4().hex[:6]}@example.org", PASSWORD, role=UserRole.STAFF
        )
        _token, secret = await accounts.create_api_token(staff.id, "browser tests")
    return secret


@pytest.fixture(scope="module")
def server(trial: Trial, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    _require_browser()
    var = tmp_path_factory.mktemp("portal-server")
    settings = Settings(database_url=f"sqlite+aiosqlite:///{var / 'portal.db'}", var_dir=var)
    token = asyncio.run(_prepare(settings, trial))
    port = _free_port()
    env = {
        **os.environ,
        "PARTNERMATCH_DATABASE_URL": settings.resolved_database_url,
        "PARTNERMATCH_VAR_DIR": str(var),
        "PARTNERMATCH_PORT": str(port),
        "PARTNERMATCH_LOGIN_ATTEMPTS_PER_IP_PER_MINUTE": "1000",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "partnermatch", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("the server did not start")
        yield Server(url, settings, token)
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def chromium(server: Server) -> Iterator[Any]:
    _require_browser()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


class Pages:
    """One person's browser: checks and screenshots every page it opens."""

    def __init__(self, chromium: Any, server: Server, language: str, label: str) -> None:
        self.server = server
        self.language = language
        self.label = label
        self.context = chromium.new_context(locale=language, viewport={"width": 1280, "height": 900})
        # A page must not ask any other host for anything.
        self.foreign: list[str] = []
        self.context.on("request", self._watch)
        self.page = self.context.new_page()

    def _watch(self, request: Any) -> None:
        if not request.url.startswith(self.server.url):
            self.foreign.append(request.url)

    def open(self, path: str) -> Any:
        self.page.goto(self.server.url + path)
        self.check(path)
        return self.page

    def check(self, name: str) -> None:
        """axe-core on the page, no horizontal scrolling at 375 px, screenshots at both widths."""
        page = self.page
        results = Axe().run(page)
        serious = [
            f"{v['id']}: {v['help']} ({len(v['nodes'])}x, e.g. {v['nodes'][0]['html'][:120]})"
            for v in results.response["violations"]
            if v["impact"] in {"serious", "critical"}
        ]
        assert serious == [], f"{name}: {serious}"
        # Stable names: no query (tokens), no ids.
        plain = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "id", name.split("?", 1)[0].lower())
        slug = re.sub(r"[^a-z0-9]+", "-", plain).strip("-") or "start"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(
            path=str(SCREENSHOTS / f"{self.label}-{self.language}-{slug}-desktop.png"), full_page=True
        )
        page.set_viewport_size({"width": 375, "height": 800})
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{name}: {width} px wide at a 375 px viewport"
        page.screenshot(
            path=str(SCREENSHOTS / f"{self.label}-{self.language}-{slug}-phone.png"), full_page=True
        )
        page.set_viewport_size({"width": 1280, "height": 900})
        assert self.foreign == [], f"{name} asked other hosts: {self.foreign}"

    def sign_in(self, email: str, password: str) -> None:
        page = self.open("/login")
        page.fill("#email", email)
        page.fill("#password", password)
        page.click("form[action='/login'] button[type=submit]")
        page.wait_for_url("**/recommendations")

    def close(self) -> None:
        self.context.close()


def _approve(server: Server, company_name: str) -> str:
    headers = {"Authorization": f"Bearer {server.staff_token}"}
    found = httpx.get(f"{server.url}/api/v1/companies", params={"q": company_name}, headers=headers).json()
    company_id = str(found["items"][0]["id"])
    answer = httpx.post(
        f"{server.url}/api/v1/companies/{company_id}/status", json={"status": "approved"}, headers=headers
    )
    assert answer.status_code == 201, answer.text
    return company_id


def _read_the_digest(person: Pages, server: Server, email: str, acted_on: set[str]) -> None:
    """The week's digest run as the schedule would start it; the member opens the mail (in German: the
    account's language), follows a lead from it and unsubscribes by its link."""
    environment = {
        **os.environ,
        "PARTNERMATCH_DATABASE_URL": server.settings.resolved_database_url,
        "PARTNERMATCH_VAR_DIR": str(server.settings.var_dir),
        "PARTNERMATCH_PUBLIC_URL": server.url,
    }
    command = [sys.executable, "-m", "partnermatch", "digests", "send"]
    run = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    digest = server.message_to(email)
    assert re.fullmatch(r"\d+ neue Empfehlungen? für .+", digest["Subject"]), digest["Subject"]
    html = digest.get_body(("html",))
    assert html is not None
    page = person.page
    page.set_content(html.get_content())
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=str(SCREENSHOTS / f"{person.label}-{person.language}-digest-mail.png"), full_page=True
    )
    links = [a.get_attribute("href") or "" for a in page.locator("a.title").all()]
    assert links
    assert all(link.startswith(server.url + "/digest/open/") for link in links)
    page.locator("a.title").first.click()
    page.wait_for_url(re.compile(r".*/leads/[0-9a-f-]{36}.*"))
    opened = re.search(r"/leads/([0-9a-f-]{36})", page.url)
    assert opened is not None
    assert opened.group(1) not in acted_on
    person.check("digest-lead")
    unsubscribe = page_link(html.get_content(), "/digest/unsubscribe/")
    page.goto(unsubscribe)
    person.check("digest-unsubscribe")  # named without its token
    page.click("form[action^='/digest/unsubscribe/'] button[type=submit]")
    page.wait_for_selector("text=Sie haben die Empfehlungen abbestellt")
    person.check("digest-unsubscribed")
    frequency = server.rows("SELECT digest_frequency FROM users WHERE email = ?", email)
    assert frequency == [("never",)]


def page_link(html: str, part: str) -> str:
    found = re.search(rf'href="([^"]*{re.escape(part)}[^"]*)"', html)
    assert found is not None, part
    return found.group(1).replace("&amp;", "&")


def _token(mail: str) -> str:
    found = re.search(r"token=([\w-]+)", mail)
    assert found is not None, mail
    return found.group(1)


def test_a_company_registers_in_german_and_acts_on_its_recommendations(chromium: Any, server: Server) -> None:
    email = f"gruenderin-{uuid.uuid4().hex[:6]}@example.org"
    name = f"Spreewerk Software {uuid.uuid4().hex[:4]} GmbH"
    person = Pages(chromium, server, "de-DE", "member")
    try:
        page = person.open("/")
        assert page.locator("h1").inner_text() == "Finden Sie Geschäftspartner in Berlins 17 Partnerstädten"
        page = person.open("/register")
        page.fill("#email", email)
        page.fill("#password", PASSWORD)
        page.fill("#password_again", PASSWORD)
        page.fill("#name", name)
        # The sector picker: a German word finds the class, a click adds it as the main sector.
        page.fill("#sector-q", "Programmierung")
        page.locator("#sector-results button", has_text="62.01").first.click()
        page.wait_for_selector("#chosen-sectors input[value='62.01']")
        page.fill("#sector-q", "Unternehmensberatung")
        page.locator("#sector-results button", has_text="70.22").first.click()
        page.wait_for_selector("#chosen-sectors input[value='70.22']")
        chosen = page.locator("#chosen-sectors input[name=sectors]")
        assert [c.get_attribute("value") for c in chosen.all()] == ["62.01", "70.22"]
        assert "Hauptbranche" in page.locator("#chosen-sectors li").first.inner_text()
        page.fill("#employees", "14")
        page.fill("#founded", "2016")
        page.select_option("#export_experience", "some")
        page.check("input[name=languages][value=de]")
        page.check("input[name=languages][value=en]")
        page.check("input[name=target_cities][value=warsaw]")
        page.fill("#description", "Software für Logistik und Lagerverwaltung; wir suchen Vertriebspartner.")
        person.check("register-filled")
        page.click("form[action='/register'] button[type=submit]")
        page.wait_for_selector("text=Bitte prüfen Sie Ihr E-Mail-Postfach")
        person.check("check-email")

        link = _token(server.mail_to(email))
        page = person.open(f"/verify-email?token={link}")
        page.click("form[action='/verify-email'] button[type=submit]")
        page.wait_for_selector("text=Ihre Adresse ist bestätigt")

        person.sign_in(email, PASSWORD)
        assert "wartet auf Freigabe" in page.content()
        person.check("pending")
        company_id = _approve(server, name)

        page = person.open("/recommendations")
        items = page.locator("li.item")
        assert items.count() > 2
        assert page.locator("li.item .reasons li").count() >= items.count()
        rendered = [i.get_attribute("id").removeprefix("lead-") for i in items.all()]  # type: ignore[union-attr]
        first, second = rendered[0], rendered[1]
        page.locator(f"#lead-{first} button", has_text="Interessiert").click()
        page.wait_for_selector(f"#lead-{first}.done")
        page.locator(f"#lead-{second} summary").click()
        page.select_option(f"#reason-{second}", "not_our_sector")
        page.locator(f"#lead-{second} button", has_text="Angebot ausblenden").click()
        page.wait_for_selector(f"#lead-{second}.dismissed")
        person.check("recommendations-after-feedback")

        # What was logged is what was shown, at the positions shown.
        logged = server.rows(
            "SELECT lower(hex(lead_id)), position FROM interactions WHERE lower(hex(company_id)) = ? "
            "AND kind = 'impression' ORDER BY position",
            company_id.replace("-", ""),
        )
        assert [(lead, position) for lead, position in logged[: len(rendered)]] == [
            (lead.replace("-", ""), n) for n, lead in enumerate(rendered, start=1)
        ]
        acted = {
            kind: reason
            for kind, reason in server.rows(
                "SELECT kind, reason FROM interactions WHERE lower(hex(company_id)) = ? AND kind != 'impression'",
                company_id.replace("-", ""),
            )
        }
        assert acted == {"interested": None, "declined": "not_our_sector"}

        page = person.open(f"/leads/{rendered[2]}?position=3")
        assert page.locator("h1").count() == 1

        # English, then German again: texts, sector names and dates follow.
        page = person.open("/profile")
        page.click("button[lang=en]")
        page.wait_for_selector("text=Profile of")
        assert "Computer programming activities" in page.content()
        person.check("profile")
        page.click("button[lang=de]")
        page.wait_for_selector("text=Profil von")
        assert "Programmierungstätigkeiten" in page.content()
        page = person.open("/missions")
        page = person.open("/leads")
        assert re.search(r"endet in \d+ Tagen|\d{2}\.\d{2}\.\d{4}|Dezember|Januar|Februar", page.content())
        page = person.open("/profile")
        page.fill("#description", "Software für Logistik, Lagerverwaltung und Zollabwicklung.")
        page.click("form[action='/profile'] button[type=submit]")
        page.wait_for_selector("text=Gespeichert")
        person.check("profile-saved")
        person.open("/colleagues")
        page = person.open("/settings")
        page.check("input[name=digest_consent]")
        page.select_option("#digest_frequency", "weekly")
        page.click("form[action='/settings/preferences'] button[type=submit]")
        page.wait_for_url("**/settings?done=preferences")
        _read_the_digest(person, server, email, acted_on={first, second})
        page = person.open("/recommendations")
        page.click("form[action='/logout'] button")
        page.wait_for_url(server.url + "/")
        assert page.locator("text=Anmelden").count() >= 1
    finally:
        person.close()


def test_a_colleague_is_invited_and_a_forgotten_password_is_reset(chromium: Any, server: Server) -> None:
    owner_email = f"owner-{uuid.uuid4().hex[:6]}@example.org"
    owner = Pages(chromium, server, "en-GB", "invitation")
    try:
        page = owner.open("/register")
        page.fill("#email", owner_email)
        page.fill("#password", PASSWORD)
        page.fill("#password_again", PASSWORD)
        page.fill("#name", f"Havel Analytics {uuid.uuid4().hex[:4]} GmbH")
        page.fill("#sector-q", "data processing")
        page.locator("#sector-results button", has_text="63.11").first.click()
        page.wait_for_selector("#chosen-sectors input[value='63.11']")
        page.fill("#employees", "8")
        page.fill("#founded", "2020")
        page.click("form[action='/register'] button[type=submit]")
        page.wait_for_selector("text=Check your email")
        page.goto(f"{server.url}/verify-email?token={_token(server.mail_to(owner_email))}")
        page.click("form[action='/verify-email'] button[type=submit]")
        owner.sign_in(owner_email, PASSWORD)
        colleague = f"colleague-{uuid.uuid4().hex[:6]}@example.org"
        page = owner.open("/colleagues")
        page.fill("#email", colleague)
        page.click("form[action='/colleagues'] button[type=submit]")
        page.wait_for_selector(f"text=An invitation to {colleague} is on its way")
        owner.check("colleagues-invited")
    finally:
        owner.close()

    invited = Pages(chromium, server, "en-GB", "invitation")
    try:
        page = invited.open(f"/accept-invitation?token={_token(server.mail_to(colleague))}")
        page.fill("#password", PASSWORD)
        page.fill("#password_again", PASSWORD + "x")
        page.click("form[action='/accept-invitation'] button[type=submit]")
        page.wait_for_selector("#password_again-error")
        invited.check("accept-invitation-error")
        page.fill("#password", PASSWORD)
        page.fill("#password_again", PASSWORD)
        page.click("form[action='/accept-invitation'] button[type=submit]")
        page.wait_for_selector("text=Welcome to PartnerMatch")
        invited.sign_in(colleague, PASSWORD)
    finally:
        invited.close()

    forgetful = Pages(chromium, server, "de-DE", "reset")
    try:
        page = forgetful.open("/reset-password")
        page.fill("#email", owner_email)
        page.click("form[action='/reset-password'] button[type=submit]")
        page.wait_for_selector("text=Wenn zu der Adresse ein Konto gehört")
        link = _token(server.mail_to(owner_email))
        page = forgetful.open(f"/reset-password?token={link}")
        page.fill("#password", "kurz")
        page.fill("#password_again", "kurz")
        page.click("form[action='/reset-password'] button[type=submit]")
        page.wait_for_selector("#password-error")
        assert "mindestens 12 Zeichen" in page.locator("#password-error").inner_text()
        page.fill("#password", PASSWORD + "-neu")
        page.fill("#password_again", PASSWORD + "-neu")
        page.click("form[action='/reset-password'] button[type=submit]")
        page.wait_for_selector("text=Ihr Passwort ist geändert")
        forgetful.sign_in(owner_email, PASSWORD + "-neu")
    finally:
        forgetful.close()


def test_a_bad_entry_keeps_the_form_and_shows_the_error_by_its_field(chromium: Any, server: Server) -> None:
    visitor = Pages(chromium, server, "de-DE", "errors")
    try:
        page = visitor.open("/register")
        page.fill("#email", "jemand@example.org")
        page.fill("#name", "Tippfehler GmbH")
        page.fill("#employees", "0")
        page.fill("#founded", "1999")
        page.click("form[action='/register'] button[type=submit]")
        page.wait_for_selector("#employees-error")
        assert page.locator("#employees-error").inner_text() == "Geben Sie eine Zahl ab 1 ein."
        assert page.locator("#employees").input_value() == "0"
        assert page.locator("#name").input_value() == "Tippfehler GmbH"
        assert page.locator("#employees").get_attribute("aria-invalid") == "true"
        assert page.locator("#sectors-error").count() == 1
        visitor.check("register-errors")
        page = visitor.open("/nicht-da")
        assert page.locator("h1").inner_text() == "Seite nicht gefunden"
        visitor.open("/login")
        visitor.open("/reset-password")
    finally:
        visitor.close()
