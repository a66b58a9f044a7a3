#!/usr/bin/env python3
"""The console in a real browser (issue #19): headless Chromium driven with Selenium, against a `herald serve`.

Arguments: one JSON object on stdin:
  {"base": "http://127.0.0.1:PORT", "root": [keyId, secret], "reader": [keyId, secret], "adminToken": "...",
   "zoneFile": "/path/zone.json", "webhookURL": "http://127.0.0.1:PORT/hook", "screenshots": "DIR or empty",
   "workDirectory": "a directory for the files it uploads"}

Walks what a tenant and the operator do, step by step, printing "STEP name" before each and "OK" at the end;
any failed expectation raises (exit status 1) with what the page showed. The test (ConsoleBrowserTests) then
checks the database and the peers for what the clicks must have done.
"""
import http.server, json, os, re, sys, threading, time

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

settings = json.load(sys.stdin)
base = settings["base"]
shots = settings.get("screenshots") or ""
facts = {}


def step(name):
    print("STEP", name, flush=True)


def expect(condition, what):
    if not condition:
        raise AssertionError(f"{what}\n--- page {driver.current_url} ---\n{driver.find_element(By.TAG_NAME, 'body').text[:3000]}")


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900",
                     "--lang=en-US", "--disable-extensions", "--no-first-run"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


driver = browser()
wait = WebDriverWait(driver, 20)


def go(path):
    driver.get(base + path)


def field(element_id, text):
    element = driver.find_element(By.ID, element_id)
    element.clear()
    element.send_keys(text)


def submit(form_css):
    """Submits the form `form_css` with its submit button (as a user clicks it) and waits for the next page."""
    form = driver.find_element(By.CSS_SELECTOR, form_css)
    button = form.find_element(By.CSS_SELECTOR, "button[type=submit], button:not([type])")
    button.click()

    def gone(_):
        # The old page's button is gone once the next page is in (Chromium may also say the node left the document).
        try:
            button.is_enabled()
            return False
        except WebDriverException:
            return True
    wait.until(gone)


def text():
    return driver.find_element(By.TAG_NAME, "body").text


def screenshot(name):
    """The page at 360 px and at 1280 px wide, whole (not just the first screen)."""
    if not shots:
        return
    for width in (360, 1280):
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width < 600})
        height = driver.execute_script("return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)")
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": min(max(height, 400), 6000), "deviceScaleFactor": 1, "mobile": width < 600})
        # Nothing may stick out sideways at 360 px but what scrolls inside its own box (wide tables).
        overflow = driver.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        expect(overflow <= 1, f"{name} at {width} px is {overflow} px wider than the screen")
        driver.save_screenshot(os.path.join(shots, f"{name}-{width}.png"))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def sign_in(key_id, secret):
    go("/console/sign-in")
    field("accessKeyId", key_id)
    field("accessKeySecret", secret)
    submit("form[action='/console/sign-in']")
    expect(driver.current_url.rstrip("/").endswith("/console"), "signed in, on the overview")


def sign_out():
    submit("form[action='/console/sign-out']")
    expect("/console/sign-in" in driver.current_url, "signed out, on the sign-in page")
    go("/console")
    expect("/console/sign-in" in driver.current_url, "the overview needs a session again")


def labels_are_tied():
    """Every visible input, select and textarea has a label (for= its id) or an aria-label."""
    unlabelled = driver.execute_script("""
        return Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea')).filter(function (e) {
          return !(e.id && document.querySelector('label[for="' + e.id + '"]')) && !e.getAttribute('aria-label');
        }).map(function (e) { return e.name || e.outerHTML.slice(0, 80); });""")
    expect(not unlabelled, f"inputs without a label: {unlabelled}")


def zone(records):
    """The zone a tenant publishes for the records the domain page lists (TXT split into 255-byte strings)."""
    published = {}
    for kind, host, value in records:
        if kind == "MX":
            preference, target = value.split(" ", 1)
            published.setdefault(host, []).append(["MX", [int(preference), target], 60])
        else:
            published.setdefault(host, []).append(["TXT", [value[i:i + 255] for i in range(0, len(value), 255)], 60])
    return published


class CrossSite(http.server.BaseHTTPRequestHandler):
    """Another site (another port) whose page posts a form to the console without its token."""

    def do_GET(self):
        page = f"""<!doctype html><title>elsewhere</title>
            <form id="evil" method="post" action="{base}/console/domains">
            <input name="name" value="evil.example"><button type="submit">win a prize</button></form>"""
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(page.encode())

    def log_message(self, *args):
        pass


try:
    step("sign in with the root AccessKey")
    go("/console")
    expect("/console/sign-in" in driver.current_url, "not signed in: to the sign-in page")
    labels_are_tied()
    sign_in(*settings["root"])
    expect("Credit grade" in text(), "the overview shows the account")

    step("add a domain and verify it against the test DNS server")
    go("/console/domains")
    labels_are_tied()
    field("name", "browser.test")
    submit("form[action='/console/domains']")
    expect("Publish the records below" in text(), "the domain was added")
    section = driver.find_element(By.XPATH, "//section[.//h2[contains(., 'browser.test')]]")
    rows = section.find_elements(By.CSS_SELECTOR, "tbody tr")
    records = []
    for row in rows:
        cells = row.find_elements(By.TAG_NAME, "td")
        records.append((cells[1].text.strip(), cells[2].find_element(By.TAG_NAME, "code").get_attribute("textContent"),
                        cells[3].find_element(By.TAG_NAME, "code").get_attribute("textContent")))
    expect(len(records) >= 3, f"SPF, DKIM and DMARC records at least: {records}")
    with open(settings["zoneFile"] + ".tmp", "w") as handle:
        json.dump(zone(records), handle)
    os.replace(settings["zoneFile"] + ".tmp", settings["zoneFile"])
    submit("form[action$='/verify']")
    expect("Checked." in text(), "verified now")
    section = driver.find_element(By.XPATH, "//section[.//h2[contains(., 'browser.test')]]")
    expect(section.find_elements(By.CSS_SELECTOR, ".status-verified"), "the domain is verified")
    expect(not section.find_elements(By.CSS_SELECTOR, ".check-missing, .check-mismatch"), "every record found")
    screenshot("domain")

    step("add a batch sender address")
    go("/console/senders")
    labels_are_tied()
    field("address", "news@browser.test")
    Select(driver.find_element(By.ID, "type")).select_by_value("batch")
    submit("form[action='/console/senders']")
    expect("news@browser.test" in text(), "the sender is listed")

    step("write a batch template and submit it for review")
    go("/console/templates")
    labels_are_tied()
    field("tpl-new-name", "welcome")
    Select(driver.find_element(By.ID, "tpl-new-type")).select_by_value("batch")
    field("tpl-new-subject", "Welcome, ${name}")
    field("tpl-new-html", "<p>Hello ${name}, welcome aboard.</p><p><a href=\"${unsubscribe}\">Unsubscribe</a></p>")
    field("tpl-new-text", "Hello ${name}, welcome aboard. Unsubscribe: ${unsubscribe}")
    submit("#tpl-new")
    go("/console/templates")
    driver.find_element(By.LINK_TEXT, "welcome").click()
    wait.until(EC.presence_of_element_located((By.ID, "tpl-status")))
    facts["template"] = driver.current_url.rstrip("/").split("/")[-1]
    if driver.find_elements(By.ID, "tpl-submit"):
        submit("#tpl-submit-form")
    screenshot("template")
    status = driver.find_element(By.ID, "tpl-status").get_attribute("data-status")
    expect(status == "pending", f"the template waits for review ({status})")

    step("the operator signs in and approves it")
    go("/console/admin")
    expect("/console/admin/sign-in" in driver.current_url, "the operator pages need the operator's sign-in")
    labels_are_tied()
    field("adm-token", "wrong-token")
    submit("#adm-sign-in")
    expect("/console/admin/sign-in" in driver.current_url or driver.find_elements(By.ID, "adm-token"), "a wrong token is refused")
    field("adm-token", settings["adminToken"])
    submit("#adm-sign-in")
    go("/console/admin/review")
    template = facts["template"]
    expect(driver.find_elements(By.ID, f"adm-review-{template}"), "the template is in the review queue")
    screenshot("operator-review")
    submit(f"#adm-approve-{template}")
    expect(not driver.find_elements(By.ID, f"adm-review-{template}"), "approved: out of the queue")
    go("/console/admin/tenants")
    expect("Browser" in text(), "the tenant is listed")
    screenshot("operator-tenants")
    go("/console/admin/processes")
    screenshot("operator-processes")
    go(f"/console/templates/{template}")
    expect(driver.find_element(By.ID, "tpl-status").get_attribute("data-status") == "approved", "the tenant sees it approved")

    step("upload a list with one bad row and see the row's error")
    go("/console/lists")
    labels_are_tied()
    field("list-name", "customers")
    submit("#list-create")
    go("/console/lists")
    driver.find_element(By.PARTIAL_LINK_TEXT, "customers").click()
    wait.until(EC.presence_of_element_located((By.ID, "list-import")))
    upload = os.path.join(settings["workDirectory"], "customers.csv")
    with open(upload, "w") as handle:
        handle.write("address,name\r\nalice@example.org,Alice\r\nnot-an-address,Bad\r\nbob@example.org,Bob\r\n")
    driver.find_element(By.ID, "file").send_keys(upload)
    submit("#list-import")
    errors = driver.find_elements(By.CSS_SELECTOR, "#import-errors tbody tr")
    expect(len(errors) == 1 and "3" in errors[0].text, f"one row refused, row 3: {[e.text for e in errors]}")
    expect("alice@example.org" in text() and "bob@example.org" in text(), "the good rows are members")
    screenshot("list-upload")

    step("start a batch and watch it finish")
    go("/console/tasks")
    labels_are_tied()
    Select(driver.find_element(By.ID, "templateId")).select_by_visible_text("welcome")
    Select(driver.find_element(By.ID, "listId")).select_by_index(0)
    Select(driver.find_element(By.ID, "task-from")).select_by_value("news@browser.test")
    submit("#task-start")
    if not driver.find_elements(By.ID, "task-progress"):
        go("/console/tasks")
        driver.find_element(By.CSS_SELECTOR, "#tasks tbody tr a").click()
    wait.until(EC.presence_of_element_located((By.ID, "task-progress")))
    facts["task"] = driver.current_url.rstrip("/").split("/")[-1]
    # No reload here: the page's script refreshes the progress until the task is finished.
    WebDriverWait(driver, 120, poll_frequency=1).until(lambda d: d.find_elements(By.ID, "task-finished"))
    expect(driver.find_element(By.ID, "task-delivered").text.strip() == "2", "both members delivered")
    screenshot("task")

    step("find a delivered message and read its events")
    go("/console/messages")
    labels_are_tied()
    field("msg-to", "alice@example.org")
    submit("#message-search")
    links = driver.find_elements(By.CSS_SELECTOR, "a.message-link")
    expect(len(links) == 1, "one message to alice")
    links[0].click()
    wait.until(EC.presence_of_element_located((By.ID, "msg-events-title")))
    events = text()
    expect("Welcome, Alice" in events, "the subject as sent")
    expect(events.lower().find("queued") < events.lower().rfind("delivered"), "queued, then delivered")
    screenshot("message")

    step("add a webhook, rotate its secret (shown once), send a test")
    go("/console/webhooks")
    labels_are_tied()
    field("wh-url", settings["webhookURL"])
    driver.find_element(By.ID, "wh-ev-all").click()
    submit("#wh-add")
    first_secret = driver.find_element(By.ID, "wh-secret").text
    driver.find_element(By.CSS_SELECTOR, "a[id^=wh-open-]").click()
    wait.until(EC.presence_of_element_located((By.ID, "wh-rotate")))
    expect(not driver.find_elements(By.ID, "wh-secret"), "the secret is not shown again")
    driver.find_element(By.ID, "wh-rotate").click()
    wait.until(EC.presence_of_element_located((By.ID, "wh-secret")))
    second_secret = driver.find_element(By.ID, "wh-secret").text
    expect(second_secret and second_secret != first_secret, "a new secret")
    facts["webhookSecret"] = second_secret
    driver.find_element(By.ID, "wh-test").click()
    wait.until(EC.presence_of_element_located((By.ID, "wh-notice")))
    screenshot("webhook")

    step("a cross-site form post without the CSRF token is refused")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CrossSite)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver.get(f"http://127.0.0.1:{server.server_address[1]}/")
    submit("#evil")
    expect("Not allowed" in text() or "/console/sign-in" in driver.current_url, "the cross-site post is refused")
    server.shutdown()
    go("/console/domains")
    expect("evil.example" not in text(), "no domain was added by the cross-site post")

    step("the overview after the work, in English and in Chinese")
    go("/console")
    screenshot("overview")
    driver.find_element(By.CSS_SELECTOR, "a[hreflang=zh]").click()
    wait.until(lambda d: "概览" in text())
    expect(driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh", "the page says it is Chinese")
    go("/console/domains")
    expect("发信域名" in text(), "the choice holds on the next page")
    screenshot("domain-zh")
    driver.find_element(By.CSS_SELECTOR, "a[hreflang=en]").click()
    wait.until(lambda d: "Domains" in text())
    expect("/console/domains" in driver.current_url, "back on the page the link was on")

    step("sign out")
    sign_out()

    step("a read-only user sees no buttons, and a forged post gets 403")
    sign_in(*settings["reader"])
    go("/console/domains")
    expect("browser.test" in text(), "the reader sees the domains")
    expect(not driver.find_elements(By.CSS_SELECTOR, "form[action$='/verify'], form[action='/console/domains']"),
           "the reader sees no add or verify button")
    for page in ("/console/domains", "/console/senders", "/console/templates", f"/console/templates/{facts['template']}", "/console/lists",
                 "/console/webhooks", "/console/suppressions", "/console/users"):
        go(page)
        expect(not driver.find_elements(By.CSS_SELECTOR, "button.danger"), f"the reader sees no delete button on {page}")
    go("/console/domains")
    token = driver.execute_script("var e = document.querySelector('input[name=csrf]'); return e ? e.value : null;")
    expect(token, "the page carries the session's token (sign-out form)")
    status = driver.execute_async_script("""
        var done = arguments[arguments.length - 1];
        var id = arguments[0];
        fetch('/console/domains', {method: 'POST', credentials: 'same-origin', redirect: 'manual',
              headers: {'Content-Type': 'application/x-www-form-urlencoded'},
              body: 'csrf=' + encodeURIComponent(id) + '&name=forged.example'}).then(function (r) { done(r.status); });
        """, token)
    expect(status == 403, f"a forged post by the reader gets 403, not {status}")
    sign_out()

    print("OK", json.dumps(facts), flush=True)
except (AssertionError, WebDriverException) as failure:
    print("FAILED", failure, flush=True)
    if not isinstance(failure, AssertionError):
        try:
            print(f"--- page {driver.current_url} ---\n{text()[:3000]}", flush=True)
        except WebDriverException:
            pass
    sys.exit(1)
finally:
    driver.quit()
