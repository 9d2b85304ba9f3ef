"""A headless Chromium driven over its DevTools pipe (file descriptors 3 and 4, messages of
JSON ended by NUL), for tests that look at a page as a browser lays it out: ``--window-size``
cannot make a window narrower than 500 pixels, where device emulation gives a phone's width."""

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess

CHROMIUM = shutil.which("chromium")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--remote-debugging-pipe")
HUNG = 120  # seconds without a message from the browser before it counts as hung
MEASURE = "JSON.stringify([document.documentElement.scrollWidth, innerWidth])"


def look(url, width, profile, height=900):
    """The page at ``url`` in a window ``width`` CSS pixels wide (from 800 down, a phone's: it
    honours the page's viewport tag): a PNG of the whole page, and the widths of the page's
    content and of the window, [scrollWidth, innerWidth]."""
    with Browser(profile) as browser:
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        session = browser.send("Target.attachToTarget", targetId=target,
                               flatten=True)["sessionId"]
        browser.send("Page.enable", session)
        browser.send("Emulation.setDeviceMetricsOverride", session, width=width, height=height,
                     deviceScaleFactor=1, mobile=width < 800)
        browser.send("Page.navigate", session, url=url)
        browser.wait("Page.loadEventFired", session)
        widths = json.loads(browser.send("Runtime.evaluate", session, expression=MEASURE,
                                         returnByValue=True)["result"]["value"])
        tall = browser.send("Runtime.evaluate", session, returnByValue=True,
                            expression="document.documentElement.scrollHeight")["result"]
        shot = browser.send("Page.captureScreenshot", session, format="png",
                            captureBeyondViewport=True,
                            clip={"x": 0, "y": 0, "width": width, "height": tall["value"],
                                  "scale": 1})
        return base64.b64decode(shot["data"]), widths


def _high(fd):
    """``fd`` moved past 4: the browser's 3 and 4 are made from it, and must not be it."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Browser:
    def __init__(self, profile):
        to_browser, self.commands = map(_high, os.pipe())
        self.replies, from_browser = map(_high, os.pipe())
        # The browser reads commands on descriptor 3 and answers on 4 (bash: dash takes no
        # descriptor past 9).
        self.process = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{to_browser} 4>&{from_browser}', CHROMIUM,
             *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(to_browser, from_browser), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        self.buffer, self.sent, self.events = b"", 0, []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()
        os.close(self.commands)
        os.close(self.replies)

    def send(self, method, session=None, **params):
        """The result of a DevTools command; the events that come before it are kept."""
        self.sent += 1
        message = {"id": self.sent, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._next()
            if reply.get("id") == self.sent:
                assert "error" not in reply, (method, reply["error"])
                return reply["result"]
            self.events.append(reply)

    def wait(self, method, session):
        while not any(e.get("method") == method and e.get("sessionId") == session
                      for e in self.events):
            self.events.append(self._next())

    def _next(self):
        while b"\0" not in self.buffer:
            ready, _, _ = select.select([self.replies], [], [], HUNG)
            chunk = os.read(self.replies, 1 << 20) if ready else b""
            assert chunk, "the browser hung or ended"
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)
