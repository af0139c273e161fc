"""The README's picture of `mmsd serve`: the page with a result, taken by headless Chromium.

    python scripts/serve_screenshot.py demo/original.mp4 -o docs/serve.png

`make demo` writes demo/original.mp4 (test actor 24's face crop, unseen in training). The server
runs as `mmsd serve --port 0`, the clip is given to the page's file input with the page's defaults,
and the picture is the whole page at 1400 CSS pixels wide, the videos stopped at the wipe's frame.
Needs Debian's chromium and chromium-driver (`make test` installs them).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import browser  # noqa: E402  (tests/browser.py)

WIDTH = 1400
WAIT_S = 600


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path, help="the video to drop on the page")
    parser.add_argument("-o", "--out", type=Path, default=Path("docs/serve.png"), help="the PNG to write")
    args = parser.parse_args()
    reason = browser.missing()
    if reason:
        sys.exit(f"serve_screenshot: {reason}")
    with tempfile.TemporaryDirectory() as scratch:
        server = browser.Server(Path(scratch) / "server.log")
        driver = browser.start(Path(scratch) / "profile", width=WIDTH, height=1000)
        try:
            take(driver, server.url, args.clip.resolve(), args.out)
        finally:
            driver.quit()
            server.stop()
    print(f"wrote {args.out}")
    return 0


def take(driver, url: str, clip: Path, out: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "model").get_attribute("value"))
    driver.find_element(By.ID, "file").send_keys(str(clip))
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_element(By.ID, "result").is_displayed()
                                        or d.find_element(By.ID, "error").is_displayed())
    error = driver.find_element(By.ID, "error")
    if error.is_displayed():
        sys.exit(f"serve_screenshot: the page says: {error.text}")
    WebDriverWait(driver, 60).until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('#videos video')].every(v => v.readyState >= 2)"))
    # the videos at the wipe's frame (the middle one), where the face is mid-sentence
    driver.execute_script(
        "const videos = [...document.querySelectorAll('#videos video')];"
        "const [still, frames] = document.getElementById('wipe-note').textContent.match(/\\d+/g).map(Number);"
        "for (const v of videos) v.currentTime = (still - 0.5) / frames * v.duration;")
    time.sleep(1.0)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",  # a viewport as tall as the page
                           {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False})
    time.sleep(0.5)
    out.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(out))


if __name__ == "__main__":
    sys.exit(main())
