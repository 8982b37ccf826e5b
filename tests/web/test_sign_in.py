"""Signing in, the token kept for the tab, an expired session, and the study and site selectors."""

from __future__ import annotations

import datetime as dt

import jwt
import pytest
from playwright.sync_api import expect

from tests.web.constants import QUIET_SITE, QUIET_STUDY, SITE_A, SITE_B, STUDY
from tests.web.pages import choose, notice_text, sign_in

pytestmark = pytest.mark.browser


def test_wrong_password_is_refused_with_a_clear_message(page, server, web_setup) -> None:
    page.goto(server.url + "/")
    page.get_by_label("Username").fill(web_setup.username)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    message = page.locator("#signin-message")
    expect(message).to_contain_text("Wrong username or password")
    expect(message).to_contain_text("errorCode.invalidCredentials")
    expect(page.locator("#app")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('roster.token')") is None


def test_sign_in_keeps_the_token_for_this_tab_only(page, server, web_setup) -> None:
    sign_in(page, server)
    expect(page.locator("#whoami-name")).to_have_text(web_setup.username)
    token = page.evaluate("sessionStorage.getItem('roster.token')")
    assert token and token.count(".") == 2
    assert page.evaluate("localStorage.length") == 0
    assert token not in page.evaluate("document.cookie")
    # A reload in the same tab stays signed in; a new tab (new session storage) does not.
    page.reload()
    expect(page.get_by_label("Study", exact=True)).to_be_visible()
    other = page.context.new_page()
    other.goto(server.url + "/")
    expect(other.get_by_role("button", name="Sign in")).to_be_visible()
    other.close()


def test_sign_in_works_from_the_keyboard_alone(page, server, web_setup) -> None:
    page.goto(server.url + "/")
    expect(page.get_by_label("Username")).to_be_focused()
    page.keyboard.type(web_setup.username)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(web_setup.password)
    page.keyboard.press("Enter")
    expect(page.get_by_label("Study", exact=True)).to_be_visible()


def test_an_expired_token_sends_the_user_back_to_sign_in(page, server, web_setup) -> None:
    sign_in(page, server)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    expired = jwt.encode(
        {
            "sub": web_setup.username,
            "preferred_username": web_setup.username,
            "iat": past - dt.timedelta(hours=1),
            "exp": past,
        },
        server.settings.jwt_secret,
        algorithm="HS256",
    )
    page.evaluate("token => sessionStorage.setItem('roster.token', token)", expired)
    page.get_by_role("button", name="Refresh").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert "session has expired" in notice_text(page.locator("#signin-message"))
    expect(page.locator("#app")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('roster.token')") is None
    # Signing in again brings the page back.
    page.get_by_label("Username").fill(web_setup.username)
    page.get_by_label("Password").fill(web_setup.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_label("Study", exact=True)).to_be_visible()


def test_the_session_ends_when_the_token_lifetime_runs_out(page, server, web_setup) -> None:
    sign_in(page, server)
    # The page knows the lifetime from the token endpoint; pretend it has passed and reload.
    page.evaluate("sessionStorage.setItem('roster.tokenExpiresAt', String(Date.now() - 1000))")
    page.reload()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert "session has expired" in notice_text(page.locator("#signin-message"))


def test_sign_out_clears_the_token_and_the_data_on_screen(page, server, web_setup) -> None:
    sign_in(page, server)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('roster.token')") is None
    assert page.locator("#study option").count() == 0


def test_selectors_list_the_studies_and_sites_the_user_may_act_on(page, server, web_setup) -> None:
    sign_in(page, server)
    study = page.get_by_label("Study", exact=True)
    assert study.evaluate("s => [...s.options].map(o => o.value)") == [STUDY, QUIET_STUDY]
    choose(page, STUDY, SITE_A)
    site = page.get_by_label("Site", exact=True)
    assert sorted(site.evaluate("s => [...s.options].map(o => o.value)")) == [SITE_A, SITE_B]

    # Site A: a coordinator may upload; Participate is active, so register is offered.
    expect(page.get_by_role("button", name="Upload", exact=True)).to_be_enabled()
    expect(page.get_by_label("Register for Participate")).to_be_enabled()

    # Site B: a viewer there may look but not upload.
    site.select_option(SITE_B)
    expect(page.get_by_role("button", name="Upload", exact=True)).to_be_disabled()
    expect(page.locator("#site-note")).to_contain_text("not upload")

    # The other study has Participate inactive: the checkbox is disabled and says why.
    choose(page, QUIET_STUDY, QUIET_SITE)
    expect(page.get_by_role("button", name="Upload", exact=True)).to_be_enabled()
    expect(page.get_by_label("Register for Participate")).to_be_disabled()
    expect(page.locator("#register-hint")).to_be_visible()


def test_a_user_without_any_role_is_told_so(page, server, web_setup, api) -> None:
    api.user("newcomer")
    sign_in(page, server, username="newcomer")
    expect(page.locator("#no-studies")).to_be_visible()
    expect(page.locator("#upload-section")).to_be_hidden()


def test_every_control_has_an_accessible_label(page, server, web_setup) -> None:
    sign_in(page, server)
    unlabeled = page.evaluate(
        """() => [...document.querySelectorAll('input, select')]
              .filter(el => !el.closest('[hidden]') && el.labels.length === 0 && !el.getAttribute('aria-label'))
              .map(el => el.id)"""
    )
    assert unlabeled == []
    nameless = page.evaluate(
        "() => [...document.querySelectorAll('button')].filter(b => !(b.getAttribute('aria-label') || "
        "b.textContent.trim())).length"
    )
    assert nameless == 0


def test_the_page_fits_a_phone_screen(page, server, web_setup) -> None:
    page.set_viewport_size({"width": 375, "height": 740})
    sign_in(page, server)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
