"""A headless Chromium for tests, and `mmsd serve` in a subprocess for it to look at.

The browser is Debian's chromium, driven by selenium through Debian's chromedriver.

Nothing is downloaded at run time: the driver is the system's (`make test` installs both with apt
when they are missing), so selenium never starts its driver manager, and the flags keep Chromium
off the network (no field trials, component updates, sync or QUIC). Each browser gets a fresh
profile folder.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",  # the test presses Play through the driver
)
STARTED = re.compile(r"open (http://\S+/) in a browser \(uploads and results in (\S+) until")


def missing() -> str | None:
    """Why no browser test can run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} is missing: `make test` installs it (apt-get install chromium chromium-driver)"
    return None


def start(profile: Path, *, width: int = 1400, height: int = 1200):
    """A headless Chromium with a fresh profile in `profile` and a window of width x height CSS pixels."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class Server:
    """`mmsd serve --port 0 ARGS...` in a subprocess: its address (`url`), its folder and its log (stderr)."""

    def __init__(self, log: Path, *args: str) -> None:
        self.log = log
        self._stderr = log.open("w")
        self.process = subprocess.Popen([sys.executable, "-m", "mmsd.cli", "serve", "--port", "0", *args],
                                        stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        line = self._first_line(timeout=120)
        found = STARTED.search(line)
        if not found:
            self.process.kill()
            raise AssertionError(f"mmsd serve did not start: {line!r}\n{self.log.read_text()}")
        self.url, self.folder = found[1], Path(found[2])

    def _first_line(self, timeout: float) -> str:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        return lines[0] if lines else ""

    def jobs(self) -> list[str]:
        """The job folders in the server's folder."""
        return sorted(p.name for p in self.folder.iterdir())

    def stop(self) -> int:
        """Ctrl-C, as a user stops it; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stderr.close()
        return self.process.returncode
