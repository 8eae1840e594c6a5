"""The web UI in a real headless Chromium against a real ``ratelord-d`` with a recorded history.

What a person does: open the dashboard, scrub the timeline to an instant and read that
instant's pools, inspect a denial and read why, run a scenario with twice the traffic and
see the denial rate rise, open a deep link and land on the same view.  Any console error
or uncaught exception on the page fails the test.

Screenshots go to a temporary directory, or to ``docs/img/`` with
``RATELORD_UPDATE_SCREENSHOTS=1`` (that is how the README's pictures are made).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ratelord.engine.state import State
from ratelord.history.synth import busy_end, generate
from ratelord.store.replay import replay_into
from ratelord.store.sqlite import EventReader
from tests.support.daemon import RunningDaemon, make_daemon

CHROMIUM = Path("/usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)"
    ),
]
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "web-ui-test-token-4f1c"
#: The recording ends at the close of the latest working day, so it holds busy hours.
END = busy_end(time.time())


def instant(hours_before_end: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(END - hours_before_end * 3600))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    """A daemon started on a day of recorded traffic (about 50,000 events)."""
    workdir = tmp_path_factory.mktemp("web")
    daemon = make_daemon(workdir)
    generate(daemon.db_path, days=1.0, scale=0.6, seed=3, end=END)
    daemon.start()
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


class Page:
    """A browser tab that records console errors and uncaught exceptions."""

    def __init__(self, browser: Any, base: str) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.base = base
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, path: str) -> Any:
        self.page.goto(self.base + path)
        return self.ready()

    def ready(self) -> Any:
        self.page.wait_for_selector("main[data-ready=true]", timeout=60_000)
        return self.page

    def shot(self, name: str) -> None:
        folder = (
            ROOT / "docs" / "img"
            if os.environ.get("RATELORD_UPDATE_SCREENSHOTS")
            else Path(os.environ.get("TMPDIR", "/tmp"))
        )
        self.page.screenshot(path=str(folder / f"web-{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()
        assert self.errors == [], f"errors in the page's console: {self.errors}"


@pytest.fixture
def tab(browser: Any, recorded: RunningDaemon) -> Iterator[Page]:
    page = Page(browser, recorded.url)
    yield page
    page.close()


def replayed_state(db: Path, seq: int) -> State:
    """The projections after event ``seq``, by a full replay: what the page must show."""
    reader = EventReader(db)
    try:
        state = State()
        replay_into(state, reader, 0, seq)
        return state
    finally:
        reader.close()


def a_denial(db: Path) -> tuple[int, str]:
    """The seq of a recorded denial and an instant just after it."""
    reader = EventReader(db)
    try:
        for batch in reader.read(0):
            for event in batch:
                if (
                    event.event_type == "intent_decided"
                    and event.payload.decision == "deny_with_reason"
                ):
                    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event.ts_event + 30))
                    return event.seq, at
    finally:
        reader.close()
    raise AssertionError("the recorded history has no denial")


def test_dashboard_shows_the_long_view(tab: Page, recorded: RunningDaemon) -> None:
    page = tab.page
    page.goto(recorded.url + "/")
    tab.ready()
    assert page.url.endswith("/ui/dashboard")
    assert page.locator("#burn canvas").count() == 1
    assert page.locator("#util canvas").count() == 1
    assert page.locator("#decisions canvas").count() == 1
    hot = page.locator("#heat .cell[data-exhausted]:not([data-exhausted='0'])")
    assert hot.count() > 0, "the recorded day ran some pool hot"
    assert "indexer" in page.locator("#agents").inner_text()
    risk_rows = page.locator("#risk tr[data-pool]")
    assert risk_rows.count() == 4
    intents = int(page.locator(".kpi b").first.inner_text().replace(",", ""))
    history = httpx.get(recorded.url + "/v1/history?since=7d&bucket=900").json()
    assert intents == history["totals"]["intents"] > 10_000
    tab.shot("dashboard")


def test_scrubbing_shows_the_pools_as_they_were(tab: Page, recorded: RunningDaemon) -> None:
    page = tab.open(f"/ui/timeline?range=7d&at={instant(9)}")
    first = int(page.locator("main").get_attribute("data-seq") or 0)
    # Drag the scrubber to six hours ago (as the input event of a drag does).
    page.evaluate(
        """(t) => { const s = document.querySelector('#scrub');
                    s.value = t; s.dispatchEvent(new Event('input')); }""",
        END - 6 * 3600,
    )
    page.wait_for_function(f"document.querySelector('main').dataset.seq != '{first}'")
    page.wait_for_function("!document.querySelector('#rebuilt').textContent.includes('…')")
    seq = int(page.locator("main").get_attribute("data-seq") or 0)
    assert seq > first
    expected = replayed_state(recorded.db_path, seq)
    rows = page.locator("#pools tr[data-pool]")
    assert rows.count() == len(expected.pools) == 4
    for i in range(rows.count()):
        row = rows.nth(i)
        pool = expected.pools[row.get_attribute("data-pool") or ""]
        shown = row.locator(".remaining").inner_text().split("/")[0].strip().replace(",", "")
        assert float(shown) == pytest.approx(pool.remaining, abs=0.06)
        assert pool.posture in row.inner_text()
    assert "at=" in page.url
    tab.shot("timeline")


def test_inspecting_a_denial_says_why(tab: Page, recorded: RunningDaemon) -> None:
    _, at = a_denial(recorded.db_path)
    page = tab.open(f"/ui/timeline?range=7d&at={at}")
    page.click("#filter button[data-filter=denials]")
    page.locator("#events tr.deny").first.click()
    why = page.locator("#why")
    why.wait_for()
    seq = page.locator("#events tr.selected").get_attribute("data-seq")
    decided = httpx.get(f"{recorded.url}/v1/history/events/{seq}").json()["event"]["payload"]
    assert decided["decision"] == "deny_with_reason"
    assert decided["reason"] in why.inner_text()
    inspector = page.locator("#inspector").inner_text()
    assert decided["rules_fired"] and all(rule in inspector for rule in decided["rules_fired"])
    assert "urgency" in inspector and "P(exhaustion before reset)" in inspector
    facts = page.locator("#inspector dl").inner_text()
    assert "sentinel:" not in facts  # placeholders read as words
    assert f"event={seq}" in page.url
    tab.shot("inspector")


def test_doubling_traffic_raises_the_denial_rate(tab: Page) -> None:
    page = tab.open("/ui/scenario")
    page.fill("#since", instant(20))
    page.fill("#until", instant(0))
    page.fill("#traffic", "2")
    page.click("#run")
    page.wait_for_selector("tr[data-metric=denial_rate]", timeout=60_000)
    row = page.locator("tr[data-metric=denial_rate] td")
    recorded_rate = float(row.nth(1).inner_text().rstrip(" %"))
    scenario_rate = float(row.nth(2).inner_text().rstrip(" %"))
    assert scenario_rate > recorded_rate
    intents = page.locator("tr[data-metric=intents] td")
    assert int(intents.nth(2).inner_text().replace(",", "")) == pytest.approx(
        2 * int(intents.nth(1).inner_text().replace(",", "")), abs=2
    )
    assert "traffic=2" in page.url and "run=1" in page.url
    tab.shot("scenario")


def test_a_deep_link_lands_on_the_same_view(
    tab: Page, browser: Any, recorded: RunningDaemon
) -> None:
    _, at = a_denial(recorded.db_path)
    page = tab.open(f"/ui/timeline?range=7d&at={at}&filter=denials")
    page.locator("#events tr.deny").first.click()
    page.locator("#why").wait_for()
    link, why = page.url, page.locator("#why").inner_text()
    seq = page.locator("#events tr.selected").get_attribute("data-seq")
    other = Page(browser, recorded.url)
    try:
        again = other.open(link.removeprefix(recorded.url))
        again.locator("#why").wait_for()
        assert again.locator("#why").inner_text() == why
        assert again.locator("#events tr.selected").get_attribute("data-seq") == seq
        assert again.locator("#filter button[aria-pressed=true]").inner_text() == "denials"
        assert again.locator("#instant").inner_text() == page.locator("#instant").inner_text()
    finally:
        other.close()


def test_explorer_shows_who_draws_from_what(tab: Page) -> None:
    page = tab.open("/ui/explorer?node=pool:mock:core:team-a")
    assert page.locator(".node").count() == 8 + 4 + 3 + 4
    detail = page.locator("#detail").inner_text()
    assert "builtin-shaping" in detail
    page.locator("#detail canvas").wait_for()
    page.click(".node[data-node='agent:crawler-01']")
    page.wait_for_function(
        "document.querySelector('#detail').textContent.includes('Latest decisions')"
    )
    assert "mock:core:team-a" in page.locator("#detail").inner_text()
    assert "node=agent" in page.url
    tab.shot("explorer")


def test_light_theme_on_request(tab: Page) -> None:
    page = tab.open("/ui/dashboard?theme=light&range=24h")
    assert page.locator("html").get_attribute("data-theme") == "light"
    page.click("#theme")
    tab.ready()
    assert page.locator("html").get_attribute("data-theme") == "dark"


def test_the_page_asks_for_the_token_once(
    browser: Any, tmp_path: Path, recorded: RunningDaemon
) -> None:
    daemon = make_daemon(
        tmp_path / "auth",
        config={"auth": {"token_ref": "env:WEB_TOKEN"}},
        env={"WEB_TOKEN": TOKEN},
    )
    daemon.start()
    tab = Page(browser, daemon.url)
    try:
        page = tab.page
        page.goto(daemon.url + "/ui/dashboard")
        page.locator("#login").wait_for()
        page.fill("#login-token", "wrong")
        page.click("#login button")
        page.locator("#login-error").wait_for()
        page.fill("#login-token", TOKEN)
        page.click("#login button")
        tab.ready()
        assert page.evaluate("sessionStorage.getItem('ratelord-token')") == TOKEN
        page.click("nav a[data-view=timeline]")
        tab.ready()
        assert not page.locator("#login").is_visible()
        assert httpx.get(daemon.url + "/v1/history").status_code == 401
    finally:
        tab.close()
        daemon.stop()
