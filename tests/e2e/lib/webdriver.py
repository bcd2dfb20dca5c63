"""A small W3C WebDriver client (standard library only) for Debian's chromedriver + chromium.

Enough for the dashboard's browser test: a headless session, navigation, finding elements by CSS
selector, clicks, keys, running scripts, window size, screenshots and the browser's console log
(chromedriver's `goog:loggingPrefs`, so JavaScript errors can count as failures).
"""

import base64
import json
import time
import urllib.error
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class WebDriverError(Exception):
    pass


class Session:
    def __init__(self, driver_url, chromium="/usr/bin/chromium", width=1280, height=900):
        self.driver = driver_url.rstrip("/")
        caps = {
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium,
                        "args": [
                            "--headless=new",
                            "--no-sandbox",  # the tests run as root
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--no-first-run",
                            "--disable-extensions",
                            f"--window-size={width},{height}",
                        ],
                    },
                    "goog:loggingPrefs": {"browser": "ALL"},
                }
            }
        }
        value = self._call("POST", "/session", caps)
        self.id = value["sessionId"]

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.driver + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                out = json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            raise WebDriverError(f"{method} {path}: {e.code} {detail[:500]}") from None
        return out.get("value")

    def _s(self, method, path, body=None):
        return self._call(method, f"/session/{self.id}{path}", body)

    def close(self):
        try:
            self._s("DELETE", "")
        except Exception:  # noqa: BLE001 - best effort at the end of a test
            pass

    def get(self, url):
        self._s("POST", "/url", {"url": url})

    def url(self):
        return self._s("GET", "/url")

    def script(self, source, *args):
        return self._s("POST", "/execute/sync", {"script": source, "args": list(args)})

    def find(self, css):
        """The element matching `css`, or None."""
        try:
            el = self._s("POST", "/element", {"using": "css selector", "value": css})
        except WebDriverError as e:
            if "no such element" in str(e):
                return None
            raise
        return el[ELEMENT]

    def click(self, element):
        self._s("POST", f"/element/{element}/click", {})

    def send_keys(self, element, text):
        self._s("POST", f"/element/{element}/value", {"text": text})

    def set_window(self, width, height):
        self._s("POST", "/window/rect", {"width": width, "height": height})

    def screenshot(self, path):
        png = base64.b64decode(self._s("GET", "/screenshot"))
        with open(path, "wb") as f:
            f.write(png)

    def browser_log(self):
        """The console entries since the last call: [{level, message}]."""
        return self._s("POST", "/se/log", {"type": "browser"}) or []

    def wait(self, what, predicate, timeout=30.0, interval=0.2):
        """Polls predicate() until it returns a true value; raises naming `what` at the timeout."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
            except WebDriverError as e:
                last = e
            if last and not isinstance(last, Exception):
                return last
            time.sleep(interval)
        raise WebDriverError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
