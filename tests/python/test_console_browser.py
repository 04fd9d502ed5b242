"""The web console (/ui) in a real browser: headless Chromium driven by Selenium, against a running
gateway, with the openai SDK sending the traffic the pages should show.

Run by a Rust integration test that starts the gateway and a fake upstream and sets:

- CONSOLE_URL    the console's root, http://127.0.0.1:PORT/ui
- GATEWAY_URL    http://127.0.0.1:PORT (the SDK uses GATEWAY_URL/v1)
- ADMIN_KEY      the admin key
- CLIENT_KEY     key `dev`: may use model `fast` (and tool globs), not PREMIUM_MODEL nor BREAKER_MODEL
- OTHER_KEY      key `other`: may use every model
- PREMIUM_MODEL  `premium`: in the catalog, dev may request access to it (portal shows "request")
- BREAKER_MODEL  a model whose only upstream fails every try with a 5xx, so its breaker opens
- BREAKER_PROVIDER  that upstream's provider name (its row on /ui/admin/models)
- SCREENSHOTS    a directory for the PNGs of each page (created if missing)
- CHROMIUM, CHROMEDRIVER  /usr/bin/chromium and /usr/bin/chromedriver (scripts/system-deps.sh)

The page ids and classes used here are those the templates in assets/console/templates/ give. Every check is an
assert: a failure exits non-zero with the traceback (and failure-*.png screenshots). Every wait is a
WebDriverWait polling a condition; nothing sleeps.
"""

import contextlib
import os
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request

import openai
from openai import OpenAI
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

CONSOLE_URL = os.environ["CONSOLE_URL"].rstrip("/")
GATEWAY_URL = os.environ["GATEWAY_URL"].rstrip("/")
ADMIN_KEY = os.environ["ADMIN_KEY"]
CLIENT_KEY = os.environ["CLIENT_KEY"]
OTHER_KEY = os.environ["OTHER_KEY"]
PREMIUM_MODEL = os.environ.get("PREMIUM_MODEL", "premium")
BREAKER_MODEL = os.environ["BREAKER_MODEL"]
BREAKER_PROVIDER = os.environ["BREAKER_PROVIDER"]
SCREENSHOTS = os.environ["SCREENSHOTS"]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")

_console = urllib.parse.urlsplit(CONSOLE_URL)
ORIGIN = f"{_console.scheme}://{_console.netloc}"
COOKIE = "switchboard_console"
KEYS = {"ADMIN_KEY": ADMIN_KEY, "CLIENT_KEY": CLIENT_KEY, "OTHER_KEY": OTHER_KEY}
PREMIUM_ENTRY = f"model:{PREMIUM_MODEL}"


# ---------------------------------------------------------------------------------------------
# Browser helpers


def new_driver():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1280,900",
        "--disable-dev-shm-usage",
    ):
        options.add_argument(arg)
    # The console log shows CSP violations (inline scripts or styles) and uncaught script errors.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


def url(path):
    """An absolute URL for a console path such as /ui/admin/keys."""
    return ORIGIN + path


def path_of(driver):
    return urllib.parse.urlsplit(driver.current_url).path


def wait(driver, seconds=10):
    """A wait that keeps polling while the element is missing or was just replaced by a live update."""
    return WebDriverWait(
        driver,
        seconds,
        poll_frequency=0.25,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    )


def wait_until(driver, probe, accept, what, seconds=10):
    """Polls probe(driver) until accept(value) holds; fails naming the last value seen."""
    last = ["<missing>"]

    def check(d):
        last[0] = probe(d)
        return accept(last[0])

    try:
        wait(driver, seconds).until(check)
    except TimeoutException:
        where = getattr(driver, "current_url", "")
        raise AssertionError(f"{what}: still {last[0]!r} after {seconds}s {where}") from None
    return last[0]


def text_of(driver, css):
    return driver.find_element(By.CSS_SELECTOR, css).text.strip()


def wait_text(driver, css, want, seconds=10):
    return wait_until(driver, lambda d: text_of(d, css), lambda t: t == want, f"{css} should read {want!r}", seconds)


def present(driver, css, seconds=10):
    try:
        return wait(driver, seconds).until(EC.presence_of_element_located((By.CSS_SELECTOR, css)))
    except TimeoutException:
        raise AssertionError(f"no {css} after {seconds}s at {driver.current_url}") from None


def assert_no_keys(driver):
    source = driver.page_source
    for name, key in KEYS.items():
        assert key not in source, f"{name} appears in the page at {driver.current_url}"


def assert_no_console_errors(driver):
    """No CSP violation nor uncaught script error since the last check (reading drains the log)."""
    bad = [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE"
        and ("Content Security Policy" in entry["message"] or "Uncaught" in entry["message"])
    ]
    assert not bad, f"console errors at {driver.current_url}: {bad}"


def check_page(driver):
    wait_until(
        driver,
        lambda d: d.execute_script("return document.readyState"),
        lambda state: state == "complete",
        "document.readyState",
    )
    assert_no_keys(driver)
    assert_no_console_errors(driver)


def visit(driver, path, expect=None):
    """Opens a console page and checks it: loaded where expected, no key in its source, no CSP error."""
    driver.get(url(path))
    check_page(driver)
    landed = path_of(driver)
    want = expect or urllib.parse.urlsplit(path).path
    assert landed == want, f"{path} landed on {landed}, expected {want}"


def screenshot(driver, name):
    assert driver.save_screenshot(os.path.join(SCREENSHOTS, name)), name


def session_cookie(driver):
    cookies = [c for c in driver.get_cookies() if c["name"] == COOKIE]
    assert len(cookies) == 1, f"expected one {COOKIE} cookie, got {driver.get_cookies()}"
    return cookies[0]


def csrf_token(driver):
    token = driver.find_element(By.CSS_SELECTOR, 'meta[name="csrf-token"]').get_attribute("content")
    assert token, f"empty csrf-token at {driver.current_url}"
    return token


def login(driver, key, landing):
    visit(driver, "/ui/login")
    field = driver.find_element(By.ID, "key")
    field.clear()
    field.send_keys(key)
    driver.find_element(By.ID, "login").click()
    wait_until(driver, path_of, lambda p: p == landing, f"login should land on {landing}")
    check_page(driver)


def assert_labels(driver):
    """Every visible form field has an id and a <label for=id> with text."""
    fields = driver.find_elements(By.CSS_SELECTOR, "input:not([type=hidden]), select, textarea")
    assert fields, f"no form fields at {driver.current_url}"
    for field in fields:
        field_id = field.get_attribute("id")
        assert field_id, f"a {field.tag_name} without id at {driver.current_url}"
        labels = driver.find_elements(By.CSS_SELECTOR, f'label[for="{field_id}"]')
        assert labels, f"#{field_id} has no <label for> at {driver.current_url}"
        assert labels[0].get_attribute("textContent").strip(), f"the label of #{field_id} is empty"


def mark_page(driver):
    """Marks the window so that a reload (which forgets the mark) is detected."""
    driver.execute_script("window.__consoleTestMark = true")


def assert_not_reloaded(driver, what):
    assert driver.execute_script("return window.__consoleTestMark === true"), f"{what}: the page reloaded"


def number(text):
    """The integer a cell shows ("1,234" -> 1234), None when it shows something else."""
    digits = re.sub(r"[,\s]", "", text)
    return int(digits) if digits.isdigit() else None


def accept_confirm_if_any(driver):
    """Buttons with data-confirm may ask confirm(): accept it when it shows up."""
    try:
        WebDriverWait(driver, 2).until(EC.alert_is_present()).accept()
    except TimeoutException:
        pass


def click_when_ready(driver, find, what, seconds=10):
    """Clicks the element find(driver) returns, finding it again if a live update replaced it."""

    def attempt(d):
        find(d).click()
        return True

    try:
        wait(driver, seconds).until(attempt)
    except TimeoutException:
        raise AssertionError(f"could not click {what} at {driver.current_url}") from None


# ---------------------------------------------------------------------------------------------
# HTTP without the browser (urllib, redirects not followed) for statuses a browser hides


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def http(method, path, cookie=None, form=None, headers=None):
    """(status, headers, body) of one request; a 3xx is returned, not followed."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url(path), data=data, method=method)
    if cookie is not None:
        request.add_header("Cookie", f"{COOKIE}={cookie}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with _opener.open(request, timeout=15) as response:
            return response.status, response.headers, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode(errors="replace")


# ---------------------------------------------------------------------------------------------
# Scenarios


def keyboard(admin):
    """i. The login page works from the keyboard alone, and its field is labelled."""
    visit(admin, "/ui/login")
    screenshot(admin, "login.png")
    assert_labels(admin)
    for _ in range(10):
        if admin.switch_to.active_element.get_attribute("id") == "key":
            break
        ActionChains(admin).send_keys(Keys.TAB).perform()
    assert admin.switch_to.active_element.get_attribute("id") == "key", "10 tabs never reached #key"
    wrong = f"sk-wrong-{secrets.token_hex(8)}"
    ActionChains(admin).send_keys(wrong, Keys.ENTER).perform()
    present(admin, "#login-error")
    check_page(admin)
    assert wrong not in admin.page_source, "the wrong key is echoed in the page"
    print("ok: keyboard: tab reaches #key, Enter submits, fields labelled")


def login_page(admin):
    """a. A wrong key is refused; the admin key opens a session whose cookie is not the key."""
    visit(admin, "/ui/login")
    wrong = f"sk-wrong-{secrets.token_hex(8)}"
    admin.find_element(By.ID, "key").send_keys(wrong)
    admin.find_element(By.ID, "login").click()
    error = wait(admin).until(EC.visibility_of_element_located((By.ID, "login-error")))
    assert error.text.strip(), "#login-error is empty"
    assert error.get_attribute("role") == "alert", error.get_attribute("outerHTML")
    check_page(admin)
    assert wrong not in admin.page_source, "the wrong key is echoed in the page"
    assert not [c for c in admin.get_cookies() if c["name"] == COOKIE], "a failed login set a session cookie"

    login(admin, ADMIN_KEY, "/ui/admin")
    assert admin.find_element(By.TAG_NAME, "body").get_attribute("data-role") == "admin"
    cookie = session_cookie(admin)
    assert cookie["httpOnly"] is True, cookie
    assert cookie.get("sameSite") == "Strict", cookie
    assert cookie.get("path") == "/ui", cookie
    assert cookie["value"] and ADMIN_KEY not in cookie["value"], "the session cookie carries the key"
    assert COOKIE not in admin.execute_script("return document.cookie"), "scripts can read the session"
    csrf_token(admin)
    print("ok: login: wrong key refused, admin session cookie HttpOnly SameSite=Strict, no key in pages")


def client_isolation(client):
    """e. A client session sees only its own portal; admin pages and actions answer 403."""
    login(client, CLIENT_KEY, "/ui/portal")
    assert client.find_element(By.TAG_NAME, "body").get_attribute("data-role") == "client"
    cookie = session_cookie(client)
    assert cookie["httpOnly"] is True and cookie.get("sameSite") == "Strict", cookie
    assert CLIENT_KEY not in cookie["value"], "the session cookie carries the key"

    present(client, "#catalog tr[data-entry]")
    access = {
        row.get_attribute("data-entry"): row.find_element(By.CSS_SELECTOR, "td.access").text.strip()
        for row in client.find_elements(By.CSS_SELECTOR, "#catalog tr[data-entry]")
    }
    usable_models = {entry for entry, state in access.items() if state == "yes" and entry.startswith("model:")}
    assert usable_models == {"model:fast"}, access
    assert access.get(PREMIUM_ENTRY) == "request", access
    assert access.get(f"model:{BREAKER_MODEL}") != "yes", access
    client.find_element(By.CSS_SELECTOR, f'tr[data-entry="{PREMIUM_ENTRY}"] button.subscribe')
    for snippet in ("snippet-curl", "snippet-python", "snippet-mcp"):
        assert "$SWITCHBOARD_KEY" in text_of(client, f"#{snippet}"), f"#{snippet} lacks the placeholder"
        client.find_element(By.CSS_SELECTOR, f'button.copy[data-copy="{snippet}"]')
    screenshot(client, "portal-catalog.png")

    session = cookie["value"]
    for path in ("/ui/admin", "/ui/admin/keys", "/ui/admin/subscriptions"):
        status, _, _ = http("GET", path, cookie=session)
        assert status == 403, f"a client session got {status} for GET {path}"
    form = {"decision": "approve", "csrf": csrf_token(client)}
    status, _, _ = http("POST", "/ui/admin/subscriptions/1", cookie=session, form=form, headers={"Origin": ORIGIN})
    assert status == 403, f"a client session got {status} approving a subscription"
    print("ok: client isolation: portal lists only dev's models as usable, admin pages and actions 403")


def live_keys(admin, client_sdk):
    """b. The keys page counts requests live, without a reload."""
    visit(admin, "/ui/admin/keys")
    admin.find_element(By.CSS_SELECTOR, "#keys[data-live]")
    row = '#keys tr[data-key="dev"]'
    for cell in ("td.requests", "td.tokens", "td.spend", "td.limited"):
        present(admin, f"{row} {cell}")
    before = number(text_of(admin, f"{row} td.requests"))
    assert before is not None, f"td.requests of dev is not a number: {text_of(admin, f'{row} td.requests')!r}"
    mark_page(admin)
    for i in range(3):
        answer = client_sdk.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": f"console live update {i}"}]
        )
        assert answer.choices[0].message.content, answer
    wait_until(
        admin,
        lambda d: number(text_of(d, f"{row} td.requests")),
        lambda n: n is not None and n >= before + 3,
        f"dev's td.requests should reach {before + 3}",
        seconds=20,
    )
    assert_not_reloaded(admin, "keys page")
    check_page(admin)
    screenshot(admin, "admin-keys.png")
    print(f"ok: live keys: dev's requests went from {before} to at least {before + 3} without a reload")


def breaker_row(driver):
    rows = driver.find_elements(By.CSS_SELECTOR, "#instances tr[data-instance]")
    named = [r for r in rows if (r.get_attribute("data-instance") or "").split(" ")[0] == BREAKER_PROVIDER]
    matches = named or [r for r in rows if BREAKER_PROVIDER in r.text]
    assert len(matches) <= 1, f"{len(matches)} instance rows match {BREAKER_PROVIDER!r}"
    if not matches:
        raise NoSuchElementException(f"no instance row for {BREAKER_PROVIDER}")
    return matches[0]


def breaker_state(driver):
    return breaker_row(driver).find_element(By.CSS_SELECTOR, "td.breaker").text.strip()


def breaker(admin, other_sdk):
    """c. A failing upstream opens its breaker, and the models page shows it live."""
    visit(admin, "/ui/admin/models")
    admin.find_element(By.CSS_SELECTOR, "#instances[data-live]")
    first = wait_until(admin, breaker_state, lambda s: bool(s), f"breaker cell of {BREAKER_PROVIDER}")
    assert first == "closed", f"the breaker of {BREAKER_PROVIDER} is {first!r} before any request"
    breaker_row(admin).find_element(By.CSS_SELECTOR, "td.inflight")
    mark_page(admin)
    statuses = []
    for i in range(6):
        try:
            other_sdk.chat.completions.create(
                model=BREAKER_MODEL, messages=[{"role": "user", "content": f"break {i}"}]
            )
        except openai.APIStatusError as error:
            statuses.append(error.status_code)
        else:
            raise AssertionError(f"{BREAKER_MODEL} answered although its upstream always fails")
    assert all(status >= 500 for status in statuses), statuses
    wait_until(admin, breaker_state, lambda s: s == "open", f"breaker of {BREAKER_PROVIDER}", seconds=20)
    assert_not_reloaded(admin, "models page")
    check_page(admin)
    screenshot(admin, "admin-models.png")
    print(f"ok: breaker: {BREAKER_PROVIDER} opened after 6 failed requests ({statuses}), shown live")


def subscription_row(driver, key, entry):
    for row in driver.find_elements(By.CSS_SELECTOR, "#subscriptions tr[data-subscription]"):
        cells = {td.text.strip() for td in row.find_elements(By.TAG_NAME, "td")}
        if (row.get_attribute("data-key") == key or key in cells) and (
            row.get_attribute("data-entry") == entry or entry in cells
        ):
            return row
    raise NoSuchElementException(f"no subscription row for {key} / {entry}")


def premium_chat(sdk):
    return sdk.chat.completions.create(model=PREMIUM_MODEL, messages=[{"role": "user", "content": "premium please"}])


def subscription(admin, client, client_sdk):
    """d. dev requests premium in the portal, the admin approves it, and dev's key can use it."""
    try:
        premium_chat(client_sdk)
    except openai.PermissionDeniedError:
        pass
    else:
        raise AssertionError(f"dev used {PREMIUM_MODEL} before subscribing")

    entry_row = f'#catalog tr[data-entry="{PREMIUM_ENTRY}"]'
    visit(client, "/ui/portal")
    click_when_ready(client, lambda d: d.find_element(By.CSS_SELECTOR, f"{entry_row} button.subscribe"), "subscribe")
    accept_confirm_if_any(client)
    wait_text(client, f"{entry_row} td.access", "pending")
    check_page(client)

    visit(admin, "/ui/admin/subscriptions")
    admin.find_element(By.CSS_SELECTOR, "#subscriptions[data-live]")
    row = wait(admin).until(lambda d: subscription_row(d, "dev", PREMIUM_ENTRY))
    subscription_id = row.get_attribute("data-subscription")
    status_css = f'#subscriptions tr[data-subscription="{subscription_id}"] td.status'
    wait_text(admin, status_css, "pending")

    # dev cannot approve its own request, even with its own valid csrf token.
    form = {"decision": "approve", "csrf": csrf_token(client)}
    status, _, _ = http(
        "POST",
        f"/ui/admin/subscriptions/{subscription_id}",
        cookie=session_cookie(client)["value"],
        form=form,
        headers={"Origin": ORIGIN},
    )
    assert status == 403, f"dev approving its own subscription got {status}"

    click_when_ready(
        admin,
        lambda d: d.find_element(
            By.CSS_SELECTOR, f'#subscriptions tr[data-subscription="{subscription_id}"] button.approve'
        ),
        "approve",
    )
    accept_confirm_if_any(admin)
    wait_text(admin, status_css, "approved")
    check_page(admin)
    screenshot(admin, "admin-subscriptions.png")

    def try_premium(sdk):
        try:
            return premium_chat(sdk)
        except openai.PermissionDeniedError:
            return False

    try:
        answer = WebDriverWait(client_sdk, 10, poll_frequency=0.5).until(try_premium)
    except TimeoutException:
        raise AssertionError(f"dev still cannot use {PREMIUM_MODEL} 10s after approval") from None
    assert answer.choices[0].message.content, answer

    visit(client, "/ui/portal")
    wait_text(client, f"{entry_row} td.access", "yes")
    print(f"ok: subscription: dev requested {PREMIUM_ENTRY}, admin approved it, dev's key uses it")


def csrf(admin):
    """f. Admin forms need the page's csrf token; a login from a foreign origin is refused."""
    visit(admin, "/ui/admin/catalog")
    token = csrf_token(admin)
    session = session_cookie(admin)["value"]
    path = "/ui/admin/catalog/model:fast"
    form = {"status": "published", "successor": "", "sunset": ""}
    same_origin = {"Origin": ORIGIN}
    status, _, _ = http("POST", path, cookie=session, form=form, headers=same_origin)
    assert status == 403, f"a POST without csrf got {status}"
    status, _, _ = http("POST", path, cookie=session, form={**form, "csrf": "x" + token}, headers=same_origin)
    assert status == 403, f"a POST with a wrong csrf got {status}"
    status, _, _ = http(
        "POST", path, cookie=session, form=form, headers={**same_origin, "X-CSRF-Token": token[::-1] + "x"}
    )
    assert status == 403, f"a POST with a wrong X-CSRF-Token got {status}"
    # The same request with the right token goes through: the refusals above were the token's.
    status, _, _ = http("POST", path, cookie=session, form={**form, "csrf": token}, headers=same_origin)
    assert status == 303, f"a POST with the right csrf got {status}"

    status, headers, _ = http("POST", "/ui/login", form={"key": ADMIN_KEY}, headers={"Origin": "http://evil.example"})
    assert status == 403, f"a login from a foreign origin got {status}"
    assert COOKIE not in (headers.get("Set-Cookie") or ""), "a login from a foreign origin set a session"
    status, headers, _ = http("POST", "/ui/login", form={"key": ADMIN_KEY}, headers=same_origin)
    assert status == 303 and urllib.parse.urlsplit(headers.get("Location", "")).path == "/ui/admin", (
        status,
        headers.get("Location"),
    )
    print("ok: csrf: missing or wrong tokens 403, right token 303, foreign-origin login 403")


def playground(client):
    """g. The playground streams an answer through /ui/api/chat."""
    visit(client, "/ui/portal/playground")
    assert_labels(client)
    Select(client.find_element(By.ID, "model")).select_by_value("fast")
    prompt = client.find_element(By.ID, "prompt")
    prompt.clear()
    prompt.send_keys("Say hello to the console")
    client.find_element(By.ID, "send").click()

    def status(d):
        text = text_of(d, "#playground-status")
        assert not text.startswith("error"), f"playground: {text}"
        return text

    wait_until(client, status, lambda s: s == "done", "#playground-status should read done", seconds=20)
    assert text_of(client, "#answer"), "the playground's answer is empty"
    check_page(client)
    screenshot(client, "portal-playground.png")
    print("ok: playground: streamed an answer from fast")


def phone(client):
    """h. The portal fits a phone's width."""
    client.set_window_size(390, 844)
    try:
        visit(client, "/ui/portal")
        present(client, "#catalog")
        client.find_element(By.CSS_SELECTOR, 'meta[name="viewport"]')
        scroll, inner = client.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert scroll <= inner + 1, f"the portal overflows a phone: scrollWidth {scroll} > innerWidth {inner}"
        screenshot(client, "portal-phone.png")
    finally:
        client.set_window_size(1280, 900)
    print(f"ok: phone: the portal fits {inner}px")


def nav_current(driver):
    link = driver.find_element(By.CSS_SELECTOR, 'nav[aria-label="Console"] a[aria-current="page"]')
    return urllib.parse.urlsplit(link.get_attribute("href")).path


def pages(admin, client):
    """Every other page renders its contract ids (charts drawn), and is screenshotted."""
    admin_pages = [
        (
            "/ui/admin",
            "admin-overview.png",
            ["#stat-rps", "#stat-errors", "#stat-p50", "#stat-p99", "#stat-tokens", "#stat-spend", "#stat-cache"],
            ["#chart-requests", "#chart-latency", "#chart-tokens"],
        ),
        ("/ui/admin/mcp", "admin-mcp.png", ["#tools", "#servers", "#registrations"], []),
        ("/ui/admin/context", "admin-context.png", ["#namespaces"], []),
        ("/ui/admin/catalog", "admin-catalog.png", ["#catalog", '#catalog tr[data-entry="model:fast"] td.status'], []),
    ]
    client_pages = [
        ("/ui/portal/usage", "portal-usage.png", ["#limits", "#usage[data-live]"], ["#chart-spend"]),
    ]
    for driver, listed in ((admin, admin_pages), (client, client_pages)):
        for path, png, ids, charts in listed:
            visit(driver, path)
            for css in ids:
                present(driver, css)
            for chart in charts:
                present(driver, f"{chart}.chart[data-series][role=img]")
                # app.js fetches the series at once (then every 5 s) and uPlot draws a canvas, or
                # the chart says "no data yet" when every value is null. After the traffic above,
                # the requests chart must have drawn.
                drawn = f"{chart} canvas" if chart == "#chart-requests" else f"{chart} canvas, {chart} .chart-empty"
                present(driver, drawn, seconds=15)
            assert nav_current(driver) == path, f"nav marks {nav_current(driver)} current on {path}"
            check_page(driver)
            screenshot(driver, png)
    stats = admin_pages[0][2]
    visit(admin, "/ui/admin")
    for css in stats:
        admin.find_element(By.CSS_SELECTOR, f"{css}[data-live]")
    print("ok: pages: overview, mcp, context, catalog and usage render their ids and charts")


def main():
    os.makedirs(SCREENSHOTS, exist_ok=True)
    sdk = {
        name: OpenAI(base_url=f"{GATEWAY_URL}/v1", api_key=key, max_retries=0, timeout=30)
        for name, key in (("client", CLIENT_KEY), ("other", OTHER_KEY))
    }
    with contextlib.ExitStack() as stack:
        admin = new_driver()
        stack.callback(admin.quit)
        client = new_driver()
        stack.callback(client.quit)
        try:
            keyboard(admin)
            login_page(admin)
            client_isolation(client)  # before the subscription: dev may use only fast
            live_keys(admin, sdk["client"])
            breaker(admin, sdk["other"])
            subscription(admin, client, sdk["client"])
            csrf(admin)
            playground(client)
            phone(client)
            pages(admin, client)
        except BaseException:
            for name, driver in (("admin", admin), ("client", client)):
                with contextlib.suppress(Exception):
                    driver.save_screenshot(os.path.join(SCREENSHOTS, f"failure-{name}.png"))
            raise
    print("console browser: all checks passed")


if __name__ == "__main__":
    main()
