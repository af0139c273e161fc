"""`mmsd serve` (mmsd/web): the page in a real headless Chromium, and the parts below it.

The server runs as a user starts it, `mmsd serve --port 0`, in a subprocess, once for the module;
the browser is Debian's chromium (tests/browser.py). A tiny original (480x288, 1.5 s, with sound) is
dropped on the page with its defaults (auto, CRF 40, emotion auto, mmsd-fast); the page must show
the three videos playing in this browser, in sync and with sound, the figures, the frame wipe and
a download that is the mp4 `mmsd decode` writes. A text file and a file over the limit must give one
line on the page and leave nothing in the server's folder. Without the browser: the job queue runs
one upload at a time in order, `handle_upload` (what a fuzzer calls) turns bad files into one-line
`UploadError`s and leaves nothing, and requests reach only their own results.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import browser
from browser import Server
from conftest import write_clip
from mmsd.media.codec import probe
from mmsd.web.jobs import JobQueue
from mmsd.web.pipeline import Options, UploadError, handle_upload

MAX_MB = 5  # the test server's upload limit
WAIT_S = 240  # for a job on a loaded 2-core machine


# --------------------------------------------------------------------------- the server and the browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(tmp_path_factory.mktemp("serve") / "server.log", "--max-mb", str(MAX_MB))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    reason = browser.missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    chromium = browser.start(tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.quit()


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    """480x288 (over the 320x240 of `auto`, so sent first), 45 frames at 30 fps with a tone."""
    path = tmp_path_factory.mktemp("clips") / "talk.mp4"
    write_clip(path, num_frames=45, size=(480, 288), audio=True, csv=False)
    return path


def drop(driver, server: Server, path: Path) -> str:
    """Load the page, give it `path` as the file input does for a dropped or chosen file, wait for
    the result or the error; the error's text ('' when there is a result)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(server.url)
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "model").get_attribute("value"))
    driver.find_element(By.ID, "file").send_keys(str(path))
    WebDriverWait(driver, WAIT_S).until(
        lambda d: d.find_element(By.ID, "result").is_displayed() or d.find_element(By.ID, "error").is_displayed(),
        f"no result after {WAIT_S} s")
    return driver.find_element(By.ID, "error").text if driver.find_element(By.ID, "error").is_displayed() else ""


@pytest.fixture(scope="module")
def page(driver, server, original):
    """The page after the original was dropped on it with the defaults (the tests that drop other
    files come after those that look at this page)."""
    error = drop(driver, server, original)
    assert not error, f"{error}\n{server.log.read_text()}"
    return driver


@pytest.fixture(scope="module")
def job(page) -> str:
    """The id of the original's job, from the page's download link."""
    from selenium.webdriver.common.by import By

    return page.find_element(By.ID, "download").get_attribute("href").split("/")[-2]


def _videos(driver) -> dict[str, dict]:
    """The page's videos, left to right, by role: their caption and state."""
    videos = driver.execute_script(
        "return [...document.querySelectorAll('#videos video')].map(v => ({role: v.dataset.role,"
        "label: v.parentElement.querySelector('figcaption').textContent, ready: v.readyState, width: v.videoWidth,"
        "height: v.videoHeight, time: v.currentTime, paused: v.paused, muted: v.muted,"
        "audio: v.webkitAudioDecodedByteCount}))")
    return {video["role"]: video for video in videos}


# --------------------------------------------------------------------------- the page


def test_the_page_shows_the_original_bicubic_and_the_model_playing_in_sync_with_sound(page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(page, 60).until(lambda d: all(v["ready"] >= 2 for v in _videos(d).values()),
                                  f"a video does not load in Chromium: {_videos(page)}")
    videos = _videos(page)
    assert [(role, v["label"], v["width"], v["height"]) for role, v in videos.items()] == [
        ("original", "Original", 480, 288), ("bicubic", "Bicubic", 480, 288), ("restored", "mmsd-fast", 480, 288)]
    summary = page.find_element(By.ID, "summary").text
    assert "an original (it is 480x288 pixels), sent at 120x72 and restored to 480x288 by mmsd-fast" in summary

    page.find_element(By.ID, "play").click()  # then look well before the end of the 1.5 s, where they loop
    WebDriverWait(page, 30, poll_frequency=0.05).until(lambda d: _videos(d)["restored"]["time"] > 0.4,
                                                       "the videos do not play")
    videos = _videos(page)
    page.find_element(By.ID, "play").click()
    times = [v["time"] for v in videos.values()]
    assert not any(v["paused"] for v in videos.values()), videos
    assert max(times) - min(times) < 0.3, f"out of sync: {videos}"
    assert not videos["restored"]["muted"] and videos["original"]["muted"] and videos["bicubic"]["muted"]
    assert videos["restored"]["audio"] > 0, "the restored video's sound was not decoded"


def test_the_page_shows_the_bit_rates_and_the_face_scores_of_bicubic_and_the_model(page):
    from selenium.webdriver.common.by import By

    rows = [[cell.text for cell in row.find_elements(By.CSS_SELECTOR, "th, td")]
            for row in page.find_elements(By.CSS_SELECTOR, "#figures tbody tr")]
    assert [row[0] for row in rows] == ["Original", "Sent, 120x72", "Bicubic", "mmsd-fast"]
    assert re.fullmatch(r"[\d,]+\.\d kbit/s", rows[0][1]) and re.fullmatch(r"[\d,]+\.\d kbit/s", rows[1][1])
    assert re.fullmatch(r"[\d,]+\.\d kbit/s", rows[1][2]) and re.fullmatch(r"[\d.]+ bit/s", rows[1][3])
    for row in rows[2:]:
        assert re.fullmatch(r"\d+\.\d\d dB( \([+-]\d+\.\d\d\))?", row[1]), row
        assert 0 < float(row[2]) <= 1, row
    assert re.match(r"Against the original, on 45 frames: ", page.find_element(By.ID, "region").text)


def test_the_page_wipes_between_two_frames(page):
    from selenium.webdriver.common.by import By

    sizes = page.execute_script(
        "return ['wipe-left-img', 'wipe-right-img'].map(id => document.getElementById(id))"
        ".map(img => [img.complete, img.naturalWidth, img.naturalHeight, img.src.split('/').pop()])")
    assert sizes == [[True, 480, 288, "frame-bicubic.png"], [True, 480, 288, "frame-restored.png"]]
    slider = page.find_element(By.ID, "wipe-pos")
    page.execute_script("arguments[0].value = 250; arguments[0].dispatchEvent(new Event('input'))", slider)
    assert page.find_element(By.ID, "wipe-left-img").value_of_css_property("clip-path") == "inset(0px 75% 0px 0px)"


def test_the_downloads_are_the_restored_mp4_with_sound_and_the_sent_file(page, tmp_path):
    from selenium.webdriver.common.by import By

    link = page.find_element(By.ID, "download")
    assert link.get_attribute("download") == "talk-mmsd-fast.mp4"
    with urllib.request.urlopen(link.get_attribute("href")) as answer:
        assert 'filename="talk-mmsd-fast.mp4"' in answer.headers["content-disposition"]
        (tmp_path / "restored.mp4").write_bytes(answer.read())
    info = probe(tmp_path / "restored.mp4")
    assert (info.width, info.height, info.num_frames, info.has_audio) == (480, 288, 45, True)
    assert "restored by mmsd" in info.metadata.get("comment", "")
    with urllib.request.urlopen(page.find_element(By.ID, "download-sent").get_attribute("href")) as answer:
        assert 'filename="talk-sent.mp4"' in answer.headers["content-disposition"]
        (tmp_path / "sent.mp4").write_bytes(answer.read())
    sent = probe(tmp_path / "sent.mp4")
    assert (sent.width, sent.height, sent.num_frames) == (120, 72, 45) and '"mmsd":1' in sent.metadata["comment"]


def test_a_text_file_gives_one_line_on_the_page_and_leaves_nothing(driver, server, job, tmp_path):
    before = server.jobs()
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video\n" * 100)
    error = drop(driver, server, notes)
    assert error == "notes.txt: not a readable video file (Invalid data found when processing input)"
    assert server.jobs() == before


def test_a_file_over_the_limit_is_refused_on_the_page_and_by_the_server(driver, server, job, tmp_path):
    before = server.jobs()
    big = tmp_path / "big.mp4"
    big.write_bytes(bytes(int((MAX_MB + 0.5) * 1e6)))
    error = drop(driver, server, big)
    assert error == f"big.mp4 is 5.5 MB, over this server's limit of {MAX_MB} MB"
    request = urllib.request.Request(f"{server.url}api/jobs?name=big.mp4", data=big.read_bytes(), method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 413
    assert json.load(refused.value) == {"error": f"the file is 5.5 MB, over this server's limit of {MAX_MB} MB"}
    assert server.jobs() == before


def test_requests_reach_only_the_results_of_their_own_job(server, job):
    assert server.jobs() == [job]

    def status(path: str, host: str | None = None) -> int:
        request = urllib.request.Request(server.url.rstrip("/") + path, headers={"Host": host} if host else {})
        try:
            with urllib.request.urlopen(request) as answer:
                return answer.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert status(f"/files/{job}/restored.mp4") == 200
    assert status(f"/files/{job}/upload") == 404  # in the folder once, never a result
    assert status(f"/files/{job}/..%2F..%2Fetc%2Fpasswd") == 404
    assert status(f"/files/{'0' * 32}/restored.mp4") == 404
    assert status(f"/files/{job}/restored.mp4", host="attacker.example") == 400  # DNS rebinding
    assert status("/static/../pipeline.py") == 404
    for query in ("model=..%2F..%2Fweights.safetensors", "model=%2Ftmp%2Fx.safetensors", "kind=both", "crf=99"):
        request = urllib.request.Request(f"{server.url}api/jobs?{query}", data=b"x", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request)
        assert refused.value.code == 400, query
    assert server.jobs() == [job]


def test_stopping_the_server_removes_its_folder(server, job):
    assert server.folder.is_dir()
    assert server.stop() == 0
    assert server.process.stdout.read() == "mmsd serve: stopped; uploads and results removed\n"
    assert not server.folder.exists()


def test_serving_beyond_this_machine_warns(tmp_path):
    other = Server(tmp_path / "server.log", "--host", "0.0.0.0")
    assert other.stop() == 0
    assert "mmsd serve: warning: listening on 0.0.0.0: anyone who reaches this machine" in other.log.read_text()


# --------------------------------------------------------------------------- below the page


def _clip(path: Path, *, size=(120, 72), frames=12, audio=True) -> Path:
    write_clip(path, num_frames=frames, size=size, audio=audio, csv=False)
    return path


def test_handle_upload_restores_a_small_clip_as_it_is(tmp_path):
    low = _clip(tmp_path / "call.mp4")
    stages = []
    result = handle_upload(low, tmp_path / "out", Options(model="bicubic"),
                           progress=lambda stage, done, total: stages.append((stage, done, total)))
    assert (result.kind, result.reason) == ("low", "it is only 120x72 pixels")
    assert (result.width, result.height, result.frames, result.scores) == (480, 288, 12, {})
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(result.files.values()) == [
        "bicubic.mp4", "frame-bicubic.png", "frame-restored.png", "restored.mp4"]
    assert ("restoring with Bicubic", 12, 12) in stages
    assert result.emotion == "not used by bicubic"


def _audio_only(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _truncated(path: Path) -> Path:
    full = _clip(path.with_name("full.mkv"), frames=60)  # Matroska: its header (and duration) come first
    data = full.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _bytes(data: bytes):
    def make(path: Path) -> Path:
        path.write_bytes(data)
        return path

    return make


BAD_UPLOADS = {
    "text": (_bytes(b"hello\n"), "not a readable video file"),
    "empty": (_bytes(b""), "the file is empty"),
    "audio only": (_audio_only, "has no video stream"),
    "truncated": (_truncated, "truncated"),
    "too large": (_bytes(bytes(2001)), "over this server's limit of 0.002 MB"),
    "too small to send": (lambda p: _clip(p, size=(24, 24), frames=3), "too small to send 4x smaller"),
}


@pytest.mark.parametrize("kind", BAD_UPLOADS)
def test_handle_upload_gives_one_line_for_a_bad_file_and_leaves_nothing(tmp_path, kind):
    make, message = BAD_UPLOADS[kind]
    (tmp_path / "in").mkdir()
    upload = make(tmp_path / "in" / "upload.mp4")
    options = Options(kind="original" if kind == "too small to send" else "auto", model="bicubic", emotion="neutral")
    with pytest.raises(UploadError, match=re.escape(message)) as failed:
        handle_upload(upload, tmp_path / "job", options, name="holiday.mp4",
                      max_bytes=2000 if kind == "too large" else None)
    text = str(failed.value)
    assert "\n" not in text and str(tmp_path) not in text and text.startswith(("holiday.mp4", "the file")), text
    assert not (tmp_path / "job").exists()


def test_options_take_model_names_never_paths():
    with pytest.raises(UploadError, match="no model '/tmp/x.safetensors'; available: bicubic, "):
        Options(model="/tmp/x.safetensors")
    with pytest.raises(UploadError, match="CRF must be in 0..51"):
        Options(crf=float("nan"))
    with pytest.raises(UploadError, match="unknown emotion state 'glad'"):
        Options(emotion="glad")


def test_jobs_run_one_at_a_time_in_order_and_a_failed_one_leaves_nothing(tmp_path):
    started, release, order = threading.Event(), threading.Event(), []

    def run(path, folder, options, *, name, max_bytes, progress):
        order.append(name)
        progress("restoring", 1, 2)
        if name == "first":
            started.set()
            assert release.wait(30)
        if name == "bad":
            raise UploadError(f"{name}: not a readable video file")
        return name

    (tmp_path / "root").mkdir()
    queue = JobQueue(tmp_path / "root", run=run, keep=1)
    jobs = []
    for name in ("first", "bad", "third"):
        job = queue.create(name, Options())
        job.upload.write_bytes(b"x")
        queue.start(job)
        jobs.append(job)
        if name == "first":
            assert started.wait(30)
    running, waiting, last = (queue.status(job.id) for job in jobs)
    assert (running.state, running.stage, running.done, running.total) == ("running", "restoring", 1, 2)
    assert (waiting.state, waiting.ahead, last.state, last.ahead) == ("queued", 1, "queued", 2)
    release.set()
    deadline = time.monotonic() + 30
    while queue.status(jobs[2].id).state != "done" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert order == ["first", "bad", "third"]
    assert [queue.status(job.id).state for job in jobs] == ["expired", "failed", "done"]  # keep=1: the last one
    assert queue.status(jobs[1].id).message == "bad: not a readable video file"
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == [jobs[2].id]
    assert not jobs[2].upload.exists()  # the upload goes once its results are made
    queue.close()
    assert not (tmp_path / "root").exists()


def test_the_wheel_carries_the_page():
    import fnmatch
    import tomllib

    import mmsd

    package = Path(mmsd.__file__).parent
    patterns = tomllib.loads((package.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    page = [p.relative_to(package).as_posix() for p in (package / "web" / "static").iterdir()]
    assert sorted(page) == ["web/static/app.js", "web/static/index.html", "web/static/style.css"]
    assert all(any(fnmatch.fnmatch(name, pattern) for pattern in patterns["mmsd"]) for name in page)


def test_a_cancelled_job_stops_at_its_next_frame_and_leaves_nothing(tmp_path):
    started = threading.Event()

    def run(path, folder, options, *, name, max_bytes, progress):
        started.set()
        while True:  # a restoration that reports a frame every 10 ms
            progress("restoring", 1, None)
            time.sleep(0.01)

    (tmp_path / "root").mkdir()
    queue = JobQueue(tmp_path / "root", run=run)
    running, waiting = queue.create("a", Options()), queue.create("b", Options())
    for job in (running, waiting):
        queue.start(job)
    assert started.wait(30)
    queue.cancel(waiting.id)
    queue.cancel(running.id)
    deadline = time.monotonic() + 30
    while queue.status(running.id).state == "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [(queue.status(job.id).state, queue.status(job.id).message) for job in (running, waiting)] == [
        ("failed", "cancelled"), ("failed", "cancelled")]
    assert list((tmp_path / "root").iterdir()) == []
    queue.close()
