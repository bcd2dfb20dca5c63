"""The dashboard in a real browser (headless Debian chromium through chromedriver).

Run by web_dashboard_test.sh with a live `rollgate dashboard` and the real controller:
  web_dashboard_browser.py DRIVER_URL DASHBOARD_URL NAMESPACE ARTIFACT_DIR KUBECTL WEB_YAML
Rollout `held` (its only environment Manual) exists when it starts; rollout `web` (staging
automatic, prod Manual) is created from WEB_YAML once the list is on screen, so that it appears
and moves on without a reload. Prints PASS/FAIL lines; exits 1 when a check failed.
"""

import subprocess
import sys
import time

from lib.webdriver import Session, WebDriverError

driver_url, dashboard_url, ns, artifacts, kubectl, web_yaml = sys.argv[1:7]
failures = 0


def passed(what):
    print(f"PASS: {what}", flush=True)


def failed(what):
    global failures
    failures += 1
    print(f"FAIL: {what}", flush=True)


def text(s, css):
    return s.script("const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", css)


def visible(s, css):
    return s.script(
        "const e = document.querySelector(arguments[0]);"
        "return !!e && !e.closest('[hidden]') && e.getClientRects().length > 0;",
        css,
    )


# The lowest WCAG contrast ratio among visible text of the page (and the element it is on).
CONTRAST = r"""
function lum(c) {
  const m = c.match(/rgba?\(([\d.]+), ([\d.]+), ([\d.]+)(?:, ([\d.]+))?\)/);
  if (!m) return null;
  const ch = [m[1], m[2], m[3]].map(Number).map(v => {
    v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2];
}
function bg(el) {
  for (let e = el; e; e = e.parentElement) {
    const c = getComputedStyle(e).backgroundColor;
    const m = c.match(/rgba\([\d.]+, [\d.]+, [\d.]+, ([\d.]+)\)/);
    if (!(m && Number(m[1]) === 0) && c !== 'transparent') return c;
  }
  return 'rgb(255, 255, 255)';
}
let worst = {ratio: 99, what: ''};
for (const el of document.querySelectorAll('body *')) {
  if (el.closest('[hidden]') || !el.getClientRects().length) continue;
  if (el.tagName === 'DIALOG' && !el.open) continue;
  const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
  if (!own || (el.tagName === 'BUTTON' && el.disabled)) continue;
  const a = lum(getComputedStyle(el).color), b = lum(bg(el));
  if (a === null || b === null) continue;
  const r = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (r < worst.ratio) worst = {ratio: r, what: el.tagName + '.' + el.className + ' "' +
                                   el.textContent.trim().slice(0, 30) + '"'};
}
return worst;
"""


def check_contrast(s, where):
    worst = s.script(CONTRAST)
    if worst["ratio"] >= 4.5:
        passed(f"{where}: every visible text has contrast >= 4.5:1 (lowest {worst['ratio']:.1f})")
    else:
        failed(f"{where}: contrast {worst['ratio']:.2f}:1 < 4.5:1 for {worst['what']}")


def js_errors(s):
    return [e for e in s.browser_log() if e.get("level") == "SEVERE"]


def row_phase(s, key):
    return text(s, f'tr[data-rollout="{key}"] .rollout-phase')


s = Session(driver_url)
try:
    # --- the list ------------------------------------------------------------------------------
    s.get(dashboard_url)
    s.wait("the redirect that drops the token", lambda: "token=" not in s.url() and s.url())
    passed(f"the token address becomes a cookie and leaves the address bar ({s.url()})")
    # The console check can fail: an error logged on purpose is seen (and clears the log).
    s.script("console.error('rollgate-probe');")
    if any("rollgate-probe" in e.get("message", "") for e in js_errors(s)):
        passed("the browser's console is read (a probe error is seen)")
    else:
        failed("the browser's console log does not show a probe error")
    s.wait("rollout held in the list", lambda: s.find(f'tr[data-rollout="{ns}/held"]'))
    passed("the list renders rollout held")
    s.script("window.__noReload = 'still the same page';")
    subprocess.run([kubectl, "-n", ns, "apply", "-f", web_yaml], check=True,
                   stdout=subprocess.DEVNULL)
    s.wait("rollout web to appear in the list", lambda: s.find(f'tr[data-rollout="{ns}/web"]'))
    passed("rollout web, created after the page loaded, appears in the list")
    phase = s.wait("web to reach AwaitingApproval in the list, live",
                   lambda: row_phase(s, f"{ns}/web") == "AwaitingApproval" and "AwaitingApproval",
                   timeout=60)
    if s.script("return window.__noReload;") == "still the same page":
        passed(f"the list updated live to {phase} without a reload")
    else:
        failed("the page reloaded to show the update")
    chips = text(s, f'tr[data-rollout="{ns}/web"] .chips')
    if "staging: Succeeded" in chips and "prod: AwaitingApproval" in chips:
        passed(f"environment progress in the list: {chips!r}")
    else:
        failed(f"environment chips: {chips!r}")
    if text(s, "#connection") == "live":
        passed("the connection indicator says live")
    else:
        failed(f"connection indicator: {text(s, '#connection')!r}")
    check_contrast(s, "list")
    s.screenshot(f"{artifacts}/dashboard-list.png")

    # --- the detail page and promote -------------------------------------------------------------
    s.click(s.find(f'tr[data-rollout="{ns}/web"] a'))
    s.wait("the detail page's tree", lambda: "approval of environment prod" in (text(s, "#tree") or ""))
    passed("the detail page shows the tree with what it waits for")
    tree = text(s, "#tree")
    if "staging" in tree and "prod" in tree and "web-prod" in tree:
        passed("the tree names both environments and the target Deployment")
    else:
        failed(f"tree: {tree!r}")
    if s.script("return document.getElementById('promote').disabled;") is False and \
            s.script("return document.getElementById('retry').disabled;") is True:
        passed("Promote is enabled, Retry disabled while awaiting approval")
    else:
        failed("button states while awaiting approval")
    check_contrast(s, "detail")
    s.screenshot(f"{artifacts}/dashboard-detail-awaiting.png")
    s.click(s.find("#promote"))
    s.wait("the promote answer", lambda: "promote requested" in (text(s, "#action-result") or ""))
    passed(f"promote answered: {text(s, '#action-result')!r}")
    s.wait("web to succeed on the page", lambda: text(s, "#detail-phase") == "Succeeded", timeout=60)
    if s.script("return window.__noReload;") == "still the same page":
        passed("the detail page moved to Succeeded live, without a reload")
    else:
        failed("the page reloaded")
    if s.script("return document.getElementById('promote').disabled && "
                "document.getElementById('abort').disabled;"):
        passed("a finished rollout offers no promote and no abort")
    else:
        failed("buttons of a finished rollout")
    s.screenshot(f"{artifacts}/dashboard-detail-succeeded.png")

    # --- abort asks first; the keyboard works ----------------------------------------------------
    s.get(dashboard_url.split("?")[0] + f"#/r/{ns}/held")
    s.wait("held awaiting approval", lambda: text(s, "#detail-phase") == "AwaitingApproval" and
           "approval" in (text(s, "#detail-waiting") or ""), timeout=60)
    abort = s.find("#abort")
    s.script("document.getElementById('abort').focus();")
    s.send_keys(abort, "\ue007")  # Enter on the focused button
    s.wait("the confirmation dialog", lambda: s.script("return document.getElementById('confirm-abort').open;"))
    focused = s.script("return document.activeElement.id;")
    if focused == "confirm-no":
        passed("Abort (by keyboard) asks for confirmation; focus is on Cancel")
    else:
        failed(f"the dialog opened with focus on {focused!r}")
    s.screenshot(f"{artifacts}/dashboard-confirm-abort.png")
    s.click(s.find("#confirm-no"))
    time.sleep(1.5)
    if text(s, "#detail-phase") == "AwaitingApproval" and \
            not s.script("return document.getElementById('confirm-abort').open;"):
        passed("Cancel closes the dialog and sends nothing (held still AwaitingApproval)")
    else:
        failed(f"after Cancel: phase {text(s, '#detail-phase')!r}")
    s.click(s.find("#abort"))
    s.wait("the dialog again", lambda: s.script("return document.getElementById('confirm-abort').open;"))
    s.click(s.find("#confirm-yes"))
    s.wait("held to be Aborted", lambda: text(s, "#detail-phase") == "Aborted", timeout=60)
    passed("confirming aborts the rollout (Aborted, live)")
    if s.script("return document.getElementById('retry').disabled;") is False:
        passed("an aborted rollout offers Retry")
    else:
        failed("Retry is disabled on an aborted rollout")

    # --- a narrow window -------------------------------------------------------------------------
    s.set_window(390, 844)
    s.get(dashboard_url.split("?")[0] + "#/")
    s.wait("the list in a narrow window", lambda: s.find(f'tr[data-rollout="{ns}/web"]'))
    overflow = s.script("return document.documentElement.scrollWidth - window.innerWidth;")
    if overflow <= 0:
        passed("a 390 px wide window needs no horizontal scrolling")
    else:
        failed(f"a 390 px window scrolls sideways by {overflow} px")
    s.screenshot(f"{artifacts}/dashboard-narrow.png")

    errors = js_errors(s)
    if errors:
        failed(f"{len(errors)} JavaScript/console errors: {errors[:3]}")
    else:
        passed("no JavaScript or console error in the whole session")
except WebDriverError as e:
    failed(str(e))
    try:
        s.screenshot(f"{artifacts}/dashboard-failure.png")
        print("page text:", s.script("return document.body.innerText;")[:2000])
        print("console:", s.browser_log()[:10])
    except WebDriverError:
        pass
finally:
    s.close()

sys.exit(1 if failures else 0)
