#!/usr/bin/python3
"""Renders pages of the documentation site in one headless chromium.

    docs_render.py BASE_URL DOM_DIR PAGE...

Starts chromium once (a new empty profile, no network beyond what
BASE_URL serves) and drives it over the DevTools protocol on a pipe
(--remote-debugging-pipe: NUL-terminated JSON on file descriptors 3 and 4,
no port, no extra packages).  For each PAGE (a path relative to BASE_URL)
it loads BASE_URL/PAGE in the same tab, waits for its load event and for
the document to be complete, and writes the rendered DOM
(document.documentElement.outerHTML, what --dump-dom prints) to
DOM_DIR/PAGE.  One browser for every page instead of one per page: a
chromium start costs seconds on a busy machine, a page load a fraction.

Chromium's own messages go to our standard error.  Prints one line per page that could not be rendered and exits 1 if there
was any.  Each page has 30 s, the whole run 600 s.
"""

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

PAGE_TIMEOUT = 30
RUN_TIMEOUT = 600


class Browser:
    def __init__(self, profile):
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def fds():
            # chromium reads commands on fd 3 and writes answers on fd 4;
            # by way of high numbers, as either pipe may be 3 or 4 already.
            r, w = os.dup(to_child_r) + 100, os.dup(from_child_w) + 100
            os.dup2(to_child_r, r)
            os.dup2(from_child_w, w)
            os.dup2(r, 3)
            os.dup2(w, 4)
            os.closerange(5, os.sysconf("SC_OPEN_MAX"))

        self.proc = subprocess.Popen(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-quic", "--no-first-run",
             "--disable-background-networking",
             "--disable-component-update", "--disable-sync",
             "--remote-debugging-pipe", "--user-data-dir=" + profile,
             "about:blank"],
            preexec_fn=fds, close_fds=False,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._next_id = 0
        self._events = []

    def _read(self, deadline):
        """One message from chromium, or None when the deadline passed."""
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium closed its pipe (exit %s)"
                                       % self.proc.poll())
                self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, deadline, session=None, **params):
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read(deadline)
            if reply is None:
                raise TimeoutError(method)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError("%s: %s" % (method, reply["error"]))
                return reply.get("result", {})
            self._events.append(reply)

    def event(self, method, session, deadline):
        """Waits for an event (one kept from earlier calls counts)."""
        while True:
            for i, ev in enumerate(self._events):
                if ev.get("method") == method and \
                        ev.get("sessionId") == session:
                    return self._events.pop(i)
            reply = self._read(deadline)
            if reply is None:
                raise TimeoutError(method)
            self._events.append(reply)

    def close(self):
        try:
            os.close(self._to_child)
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main():
    base, doms, pages = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3:]
    profile = tempfile.mkdtemp(prefix="txb-chromium.")
    browser = Browser(profile)
    end = time.monotonic() + RUN_TIMEOUT
    bad = 0
    try:
        target = browser.call("Target.createTarget", end, url="about:blank")
        session = browser.call("Target.attachToTarget", end, flatten=True,
                               targetId=target["targetId"])["sessionId"]
        browser.call("Page.enable", end, session)
        for page in pages:
            deadline = min(end, time.monotonic() + PAGE_TIMEOUT)
            try:
                browser._events = [e for e in browser._events
                                   if e.get("method") != "Page.loadEventFired"]
                nav = browser.call("Page.navigate", deadline, session,
                                   url="%s/%s" % (base, page))
                if nav.get("errorText"):
                    raise RuntimeError(nav["errorText"])
                browser.event("Page.loadEventFired", session, deadline)
                html = browser.call(
                    "Runtime.evaluate", deadline, session,
                    expression="document.readyState === 'complete' && "
                    "document.documentElement.outerHTML",
                    returnByValue=True)["result"].get("value")
                if not isinstance(html, str):
                    raise RuntimeError("document not complete")
                path = os.path.join(doms, page)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(html)
            except (RuntimeError, TimeoutError) as exc:
                print("not rendered: %s (%s)" % (page, exc))
                bad += 1
    finally:
        browser.close()
        shutil.rmtree(profile, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
