"""A real browser: headless Chromium (Debian's package) driven by Playwright against `liveworld play`."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (scripts/test.sh installs it)")

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from liveworld.bundled import BUNDLED_WORLD_DIR

    checkpoint = os.environ.get("LIVEWORLD_TEST_CHECKPOINT", str(BUNDLED_WORLD_DIR))
    if not (Path(checkpoint) / "config.json").exists() and not (Path(checkpoint) / "checkpoint").exists():
        pytest.skip("no bundled world to play")
    yield from launch(checkpoint)


@pytest.fixture(scope="module")
def worlds_server(tiny_worlds):
    yield from launch(str(tiny_worlds[0]))


def launch(checkpoint: str):
    """`liveworld play --checkpoint` on a free loopback port, until the test module ends."""
    port = free_port()
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.Popen([sys.executable, "-m", "liveworld.cli", "--threads", "1", "play", "--checkpoint", checkpoint,
                             "--port", str(port), "--fps", "20"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "info", timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stdout.read().decode())
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(10)


def fingerprints(page, frames: int, hold: str | None = None) -> list[float]:
    page.wait_for_function("window.lwFrames && window.lwFrames.length >= 1", timeout=60000)
    if hold:
        page.keyboard.down(hold)
    page.wait_for_function(f"window.lwFrames.length >= {frames}", timeout=120000)
    if hold:
        page.keyboard.up(hold)
    return page.evaluate(f"window.lwFrames.slice(0, {frames})")


def test_page_plays_and_a_held_key_changes_the_world(server, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page()
            page.goto(server)
            idle = fingerprints(page, 30)
            page.close()
            page = browser.new_page()  # a new player starts from the same opening and noise
            page.goto(server)
            held = fingerprints(page, 30, hold="KeyW")
            assert page.locator(".key.on").count() == 0  # released again
            shot = tmp_path / "play.png"
            page.screenshot(path=str(shot))
            assert shot.stat().st_size > 1000
            fps_text = page.locator("#fps").inner_text()
        finally:
            browser.close()
    assert idle[0] == held[0], "both players open on the same frame"
    diverged = sum(a != b for a, b in zip(idle[10:], held[10:]))
    assert diverged >= 10, f"holding W should change the generated frames ({idle[-5:]} vs {held[-5:]})"
    assert "FPS" in fps_text
    print(f"screenshot: {shot}")


def test_a_click_on_the_picture_starts_sound_and_the_text_box_takes_input(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS + ["--autoplay-policy=user-gesture-required"])
        try:
            page = browser.new_page()
            page.goto(server)
            page.wait_for_function("window.lwFrames && window.lwFrames.length >= 1", timeout=60000)
            assert page.evaluate("window.lwAudio === undefined")  # no sound before a gesture
            box = page.locator("#world").bounding_box()
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # the picture itself
            page.wait_for_function("window.lwAudio && window.lwAudio.state === 'running'", timeout=10000)
            assert not page.locator("#overlay").is_visible()
            page.locator("#text").click()  # the first click lands on the text box, not on an overlay
            page.keyboard.type("a red door")
            assert page.locator("#text").input_value() == "a red door"
            # both boxes now: clicking the text box may have scrolled the page (boxes are in viewport terms)
            stats, box = page.locator("#fps").bounding_box(), page.locator("#world").bounding_box()
            assert stats["y"] >= box["y"] + box["height"] - 1, "the stats sit below the picture, uncovered"
        finally:
            browser.close()


def test_a_page_from_another_origin_cannot_open_a_session(server):
    from playwright.sync_api import sync_playwright

    ws_url = server.replace("http://", "ws://") + "ws"
    html = f"""<script>
      window.result = "pending";
      const ws = new WebSocket("{ws_url}");
      ws.onopen = () => window.result = "open";
      ws.onerror = () => window.result = "refused";
      ws.onclose = () => {{ if (window.result === "pending") window.result = "refused"; }};
    </script>"""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page()
            page.route("http://elsewhere.example/", lambda route: route.fulfill(status=200, content_type="text/html", body=html))
            page.goto("http://elsewhere.example/")
            page.wait_for_function("window.result !== 'pending'", timeout=10000)
            assert page.evaluate("window.result") == "refused"
            own = browser.new_page()  # the server's own page still plays
            own.goto(server)
            own.wait_for_function("window.lwFrames && window.lwFrames.length >= 1", timeout=60000)
        finally:
            browser.close()


def test_a_server_beyond_loopback_asks_every_connection_for_its_token():
    from playwright.sync_api import sync_playwright

    from liveworld.bundled import BUNDLED_WORLD_DIR

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "liveworld.cli", "--threads", "1", "play", "--checkpoint", str(BUNDLED_WORLD_DIR),
                             "--host", "0.0.0.0", "--port", str(port), "--fps", "10"],
                            env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        while not any("?token=" in line for line in lines):
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("".join(lines))
            lines.append(line)
        url = next(line for line in lines if "?token=" in line).strip()
        token = url.split("?token=")[1]
        base = f"http://127.0.0.1:{port}/"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            try:
                page = browser.new_page()
                for _ in range(100):  # the server may still be starting
                    try:
                        response = page.goto(base)
                        break
                    except Exception:
                        time.sleep(0.3)
                assert response.status == 403 and "needs its token" in page.content()
                response = page.goto(base + "?token=" + token)
                assert response.status == 200
                page.wait_for_function("window.lwFrames && window.lwFrames.length >= 1", timeout=60000)
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_world_picker_opens_each_world_at_its_shape_and_text_starts_it(worlds_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page()
            page.goto(worlds_server)
            page.wait_for_function("window.lwFrames && window.lwFrames.length >= 1", timeout=60000)
            options = page.eval_on_selector_all("#worlds option", "els => els.map(e => e.value)")
            assert options == ["doom:deathmatch", "minigrid:Empty-8x8-v0"]
            assert page.eval_on_selector("#world", "c => [c.width, c.height]") == [32, 24]
            page.select_option("#worlds", "minigrid:Empty-8x8-v0")
            page.wait_for_url("**world=minigrid*")
            page.wait_for_function("window.lwFrames && window.lwFrames.length >= 1", timeout=60000)
            assert page.eval_on_selector("#world", "c => [c.width, c.height]") == [24, 24]
            assert "forward" in page.inner_text("#keys") and "toggle" in page.inner_text("#keys")
            w, h = page.eval_on_selector("#world", "c => [c.clientWidth, c.clientHeight]")
            assert w == h  # a square world shown square
            page.fill("#prompt", "get to the green goal square")
            page.click("#start")
            # the stream restarts from the prompt alone: the stats show it as the text of the frames that follow
            page.wait_for_function("document.querySelector('#cond').textContent === 'text: get to the green goal square'",
                                   timeout=60000)
            assert page.inner_text("#error") == ""
        finally:
            browser.close()
