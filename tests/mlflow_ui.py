"""Drive the real MLflow UI: ``mlflow server`` on 127.0.0.1 over a store, headless Chromium through Selenium
(Debian's ``chromium`` and ``chromium-driver``). Used by ``test_mlflow_ui.py``, and to refresh the README's
screenshots from a real sweep's store:

    python tests/mlflow_ui.py sqlite:///$PWD/outputs/mlflow.db <parent run id> docs/
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def mlflow_server(uri: str, log: Path):
    """``mlflow server`` on a free port of 127.0.0.1, until /health answers; yields its base URL."""
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
                                 "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                                stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if urllib.request.urlopen(f"{base}/health", timeout=2).status == 200:
                    break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"mlflow server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextlib.contextmanager
def browser(width: int = 1400, height: int = 900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def _text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def _wait(driver, predicate, what: str, timeout: float = 90):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5).until(lambda d: predicate(d))
    except Exception as err:
        raise AssertionError(f"the MLflow UI never showed {what}; page text:\n{_text(driver)[:3000]}") from err


def experiment_page(driver, base: str, experiment_id: str, parent_name: str, children: list[str],
                    screenshot: Path | None = None) -> str:
    """Open the experiment's runs table, expand the sweep's parent row, wait for every child; returns the text."""
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/#/experiments/{experiment_id}/runs")
    _wait(driver, lambda d: parent_name in _text(d) and "matching runs" in _text(d), f"the parent {parent_name!r}")
    time.sleep(1)  # the children of an expanded parent render just after it
    shown = lambda d: all(f"\n{c}\n" in f"\n{_text(d)}\n" for c in children)  # noqa: E731
    if not shown(driver):  # collapsed (the UI remembers an expanded parent)
        cell = driver.find_element(By.XPATH, f"//*[text()='{parent_name}']/ancestor::*[@role='gridcell'][1]")
        cell.find_element(By.TAG_NAME, "button").click()  # the expander: children are nested under the parent
    _wait(driver, lambda d: all(f"\n{c}\n" in f"\n{_text(d)}\n" for c in children), f"the children {children}")
    if screenshot:
        driver.save_screenshot(str(screenshot))
    return _text(driver)


def loss_chart(driver, base: str, experiment_id: str, run_id: str, screenshot: Path | None = None) -> int:
    """Open a run's metric charts filtered to ``loss``; returns how many points the ``loss`` chart plots."""
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/#/experiments/{experiment_id}/runs/{run_id}/model-metrics")
    search = _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "input[placeholder*='Search metric']"),
                   "the metric charts")[0]
    search.send_keys("loss")

    plot = "contains(concat(' ', normalize-space(@class), ' '), ' js-plotly-plot ')"

    def count(d):  # each plot's own card (its outermost ancestor holding no other plot), titled exactly "loss"
        from selenium.common.exceptions import StaleElementReferenceException

        try:
            for chart in d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"):
                cards = chart.find_elements(By.XPATH, f"ancestor::*[count(.//*[{plot}]) = 1][last()]")
                if cards and cards[0].find_elements(By.XPATH, ".//*[normalize-space(text())='loss']"):
                    return len(chart.find_elements(By.CSS_SELECTOR, ".scatterlayer .point"))
        except StaleElementReferenceException:  # the page re-rendered while we read it: look again
            pass
        return 0

    seen: list[tuple[float, int]] = []

    def settled(d):  # the chart first draws what it has fetched so far (CI once read 2 of 6 points): wait until
        seen.append((time.monotonic(), count(d)))  # the same non-zero count has held for 3 s
        t, n = seen[-1]
        held = [m for s, m in seen if s >= t - 3]
        return n if n and seen[0][0] <= t - 3 and all(m == n for m in held) else 0

    n = _wait(driver, settled, "a plotted loss chart that stops changing")
    if screenshot:
        time.sleep(1)
        driver.save_screenshot(str(screenshot))
    return n


def plain(markdown: str) -> str:
    """Markdown inline text as the page shows it (no backticks, no bold markers)."""
    return markdown.replace("`", "").replace("**", "")


def close_assistant(driver) -> None:
    """Close MLflow's assistant side panel (it takes a third of the window)."""
    from selenium.webdriver.common.by import By

    close = "//*[text()='MLflow Assistant']/following::button[@aria-label='Close']"
    for button in driver.find_elements(By.XPATH, close):
        with contextlib.suppress(Exception):
            button.click()


def run_overview(driver, base: str, experiment_id: str, run_id: str, expect: str,
                 screenshot: Path | None = None) -> str:
    """Open a run's overview page and wait for ``expect`` in it (e.g. the sweep's answer in its description);
    returns the page text. The screenshot shows the whole description, its plots loaded."""
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/#/experiments/{experiment_id}/runs/{run_id}")
    _wait(driver, lambda d: expect in _text(d), f"{expect!r} on the run's overview")
    if screenshot:
        close_assistant(driver)
        for more in driver.find_elements(By.XPATH, "//*[normalize-space(text())='Show more']"):
            with contextlib.suppress(Exception):
                more.click()
        _wait(driver, lambda d: all(d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i)
                                    for i in d.find_elements(By.CSS_SELECTOR, "img[src*='get-artifact']")),
              "the description's plots")
        time.sleep(1)
        driver.save_screenshot(str(screenshot))
    return _text(driver)


def grouped_charts(driver, base: str, experiment_id: str, parent_name: str, children: list[str], group_tag: str,
                   metric_filter: str, screenshot: Path | None = None) -> list[str]:
    """The runs page's chart view of a sweep: its parent expanded, runs grouped by the tag ``group_tag``, the charts
    filtered by ``metric_filter``; returns the legend entries of the plotted charts (``huber (objective/...)``)."""
    from selenium.webdriver.common.by import By

    experiment_page(driver, base, experiment_id, parent_name, children)
    close_assistant(driver)
    driver.find_element(By.XPATH, "//button[.//*[text()='Group by']]").click()
    _wait(driver, lambda d: d.find_elements(By.XPATH, f"//*[normalize-space(text())='{group_tag}']"),
          "the tag to group by")
    driver.switch_to.active_element.send_keys(group_tag)
    time.sleep(0.5)
    driver.find_element(By.XPATH, f"//*[normalize-space(text())='{group_tag}']").click()
    _wait(driver, lambda d: f"Group by: {group_tag}" in _text(d), f"the runs grouped by {group_tag}")
    driver.find_element(By.XPATH, "//input[@name='runs-view-mode' and @value='CHART']/ancestor::label[1]").click()
    search = _wait(driver, lambda d: [x for x in d.find_elements(By.CSS_SELECTOR, "input[placeholder*='Search']")
                                      if "chart" in (x.get_attribute("placeholder") or "").lower()
                                      or "metric" in (x.get_attribute("placeholder") or "").lower()],
                   "the chart view")[0]
    search.send_keys(metric_filter)

    def legends(d):  # a plotted chart's legend: one line per group, "huber (objective/test_pearson)"
        if not d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"):
            return None
        return [line for line in _text(d).split("\n") if f" ({metric_filter}" in line] or None

    names = _wait(driver, legends, f"charts of {metric_filter!r}")
    if screenshot:
        time.sleep(1)
        driver.save_screenshot(str(screenshot))
    return names


def main(uri: str, parent_id: str, out: str) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(parent_id)
    exp = parent.info.experiment_id
    kids = client.search_runs([exp], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'", max_results=1000)
    names = sorted({k.info.run_name for k in kids})
    answer = plain(parent.data.tags.get("mlflow.note.content", "").split("\n")[0].split(":** ", 1)[-1])[:60]
    folder = Path(out)
    with mlflow_server(uri, folder / "mlflow-server.log") as base, browser(1600, 1000) as driver:
        experiment_page(driver, base, exp, parent.info.run_name, names)
        close_assistant(driver)
        time.sleep(1)
        driver.save_screenshot(str(folder / "mlflow-ui-sweep.png"))
        run_overview(driver, base, exp, parent_id, answer, folder / "mlflow-ui-parent.png")
        grouped_charts(driver, base, exp, parent.info.run_name, names, "choice.loss", "objective/",
                       folder / "mlflow-ui-charts.png")
        loss_chart(driver, base, exp, kids[0].info.run_id, folder / "mlflow-ui-loss-curve.png")
    (folder / "mlflow-server.log").unlink()


if __name__ == "__main__":
    main(*sys.argv[1:4])
