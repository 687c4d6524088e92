#!/usr/bin/env python3
"""The web UI in a real browser (issue 9 section 4).

Starts a 3-node `ballast server` cluster and a `transfers` worker on 127.0.0.1 (free ports,
temporary directory), runs transfers of which some are rejected by the simulated bank and
compensated, then drives headless Chromium (Debian's chromium + chromium-driver, through
Selenium) to check:

  1. the cluster page shows exactly one leader (after its live refresh ran);
  2. the list filtered with TransferOutcome = 'compensated' counts exactly the compensated
     transfers that `transfers start` reported;
  3. a compensated transfer's timeline shows its debit, the bank's failure and the refund;
  4. a transfer waiting for an approval is cancelled from the UI with a reason, ends
     compensated, and its history records the reason and the UI's identity;
  5. a hostile workflow id and signal payload render inert (no script runs, text shown escaped).

A screenshot of each page goes to artifacts/ui/ (git-ignored); with --update-docs they are
also copied to docs/ui/. Every wait polls a condition against a deadline. Exit status 0 when
everything held.

Usage: .venv/bin/python Tests/browser/ui_test.py [--update-docs] [--keep]
Needs: a debug build (`swift build`) or BALLAST_BIN / TRANSFERS_BIN; scripts/install-deps --test.
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(ROOT, "artifacts", "ui")
DOCS_UI = os.path.join(ROOT, "docs", "ui")


class Failure(Exception):
    pass


def log(message):
    print(f"[ui-test {time.strftime('%H:%M:%S')}] {message}", flush=True)


def wait_for(what, condition, timeout=60.0, interval=0.2):
    """Polls condition() until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as error:  # a condition may fail while things start; keep polling
            last_error = error
        time.sleep(interval)
    raise Failure(f"timed out after {timeout:.0f} s waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


def free_port():
    """A free port below the ephemeral range (an ephemeral one could be taken as a source port)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except OSError:
        low = 32768
    for _ in range(200):
        port = random.randint(10000, max(10001, low - 1))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise Failure("no free port")


def binary(name, variable):
    path = os.environ.get(variable) or os.path.join(ROOT, ".build", "debug", name)
    if not os.access(path, os.X_OK):
        raise Failure(f"no {name} binary at {path}: run `swift build` first or set {variable}")
    return path


def http_get(url, accept="application/json", timeout=5):
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read().decode()


class Cluster:
    """Three `ballast server` processes, a worker and helper processes; all killed in stop()."""

    def __init__(self, directory):
        self.directory = directory
        self.ballast = binary("ballast", "BALLAST_BIN")
        self.transfers = binary("transfers", "TRANSFERS_BIN")
        self.nodes = {i: {"raft": free_port(), "api": free_port(), "admin": free_port()} for i in (1, 2, 3)}
        self.processes = []
        self.ledger = os.path.join(directory, "ledger.sqlite")

    @property
    def api_addresses(self):
        return ",".join(f"127.0.0.1:{n['api']}" for n in self.nodes.values())

    def spawn(self, arguments, log_name):
        out = open(os.path.join(self.directory, log_name), "ab")
        process = subprocess.Popen(arguments, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    def start(self):
        peers = ",".join(f"{i}=127.0.0.1:{n['raft']}" for i, n in self.nodes.items())
        for i, n in self.nodes.items():
            self.spawn([self.ballast, "server", "--id", str(i), "--data-dir", os.path.join(self.directory, f"node-{i}"),
                        "--raft", f"127.0.0.1:{n['raft']}", "--api", f"127.0.0.1:{n['api']}",
                        "--admin", f"127.0.0.1:{n['admin']}", "--peers", peers], f"node-{i}.log")

    def leader(self):
        """The leader's id once one node's /cluster names it and it reports itself leading."""
        for n in self.nodes.values():
            try:
                _, body = http_get(f"http://127.0.0.1:{n['admin']}/cluster")
            except Exception:
                continue
            view = json.loads(body)
            leaders = [m for m in view["members"] if m["role"] == "leader" and m["reachable"]]
            if len(leaders) == 1 and all(m["reachable"] for m in view["members"]):
                return int(leaders[0]["id"])
        return None

    def ui(self, node_id):
        return f"http://127.0.0.1:{self.nodes[node_id]['admin']}"

    def cli(self, *arguments, timeout=60):
        result = subprocess.run([self.ballast, "workflow", *arguments, "--address", self.api_addresses],
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise Failure(f"ballast workflow {' '.join(arguments)} failed: {result.stdout} {result.stderr}")
        return result.stdout

    def stop(self):
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def logs(self):
        text = []
        for name in sorted(os.listdir(self.directory)):
            if name.endswith(".log"):
                with open(os.path.join(self.directory, name), errors="replace") as f:
                    text.append(f"--- {name} (last lines)\n" + "".join(f.readlines()[-15:]))
        return "\n".join(text)


class Browser:
    def __init__(self):
        options = webdriver.ChromeOptions()
        options.binary_location = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
        for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
            options.add_argument(argument)
        self.driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")),
                                       options=options)
        self.driver.set_page_load_timeout(30)
        self.screenshots = []

    def open(self, url):
        self.driver.get(url)

    def shot(self, name):
        os.makedirs(ARTIFACTS, exist_ok=True)
        path = os.path.join(ARTIFACTS, f"{name}.png")
        # The whole page, not just the window: grow the window to the document's height first.
        height = self.driver.execute_script("return Math.min(document.documentElement.scrollHeight, 4000)")
        self.driver.set_window_size(1400, max(800, height))
        self.driver.save_screenshot(path)
        self.driver.set_window_size(1400, 1000)
        self.screenshots.append(path)
        log(f"screenshot {path}")

    def texts(self, selector):
        return [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, selector)]

    def timeline(self):
        rows = []
        for row in self.driver.find_elements(By.CSS_SELECTOR, "#timeline tbody tr"):
            cells = row.find_elements(By.TAG_NAME, "td")
            rows.append((row.get_attribute("data-event-type"), cells[4].text if len(cells) > 4 else ""))
        return rows

    def quit(self):
        try:
            self.driver.quit()
        except WebDriverException:
            pass


def check_cluster_page(cluster, browser, leader):
    browser.open(cluster.ui(leader) + "/cluster")
    # The page renders on the server, then the script replaces the rows every second: wait for a
    # refresh (the "updated" cell shows an ISO time) so the live path is what is checked.
    wait_for("the cluster page's live refresh", lambda: "T" in browser.driver.find_element(By.ID, "updated").text
             and browser.driver.find_element(By.ID, "updated").text.endswith("Z"), timeout=20)
    roles = browser.driver.execute_script(
        "return Array.from(document.querySelectorAll('#members tbody tr')).map(r => r.getAttribute('data-role'))")
    if len(roles) != 3 or roles.count("leader") != 1:
        raise Failure(f"the cluster page shows roles {roles}, expected 3 members and exactly one leader")
    shown_leader = browser.driver.find_element(By.ID, "leader").text
    if shown_leader != str(leader):
        raise Failure(f"the cluster page names leader {shown_leader}, the cluster says {leader}")
    log(f"cluster page: roles {roles}, leader {shown_leader}")
    browser.shot("cluster")


def filter_list(browser, base, query):
    browser.open(base + "/workflows")
    box = browser.driver.find_element(By.ID, "query")
    box.clear()
    box.send_keys(query)
    browser.driver.find_element(By.ID, "apply-filter").click()
    wait_for("the filtered list", lambda: urllib.parse.urlparse(browser.driver.current_url).query.startswith("query="), timeout=20)


def check_compensated_filter(cluster, browser, base, expected):
    filter_list(browser, base, "TransferOutcome = 'compensated'")
    total = int(browser.driver.find_element(By.ID, "total-count").text)
    links = browser.driver.find_elements(By.CSS_SELECTOR, "a.workflow-link")
    if total != expected or len(links) != expected:
        raise Failure(f"filter TransferOutcome = 'compensated': the page counts {total} with {len(links)} rows, "
                      f"transfers start reported {expected}")
    log(f"compensated filter: {total} runs, as reported")
    browser.shot("workflows-compensated")
    return [link.get_attribute("href") for link in links]


def check_compensated_timeline(browser, links):
    """Some compensated transfer shows Debit completed, a failed activity, and Refund completed."""
    for href in links:
        browser.open(href)
        rows = browser.timeline()
        debit = any(t == "ActivityTaskCompleted" and "activity=Debit#" in d for t, d in rows)
        failed = [d for t, d in rows if t == "ActivityTaskFailed"]
        refund = any(t == "ActivityTaskCompleted" and "activity=Refund#" in d for t, d in rows)
        if debit and failed and refund:
            outcome = browser.driver.find_element(By.CSS_SELECTOR, "[data-attribute='TransferOutcome']").text
            if outcome != "compensated":
                raise Failure(f"{href}: TransferOutcome shows {outcome!r}")
            log(f"timeline of {href}: debit, failure ({failed[0][:80]}…), refund")
            browser.shot("workflow-compensated")
            return
    raise Failure(f"none of the {len(links)} compensated transfers shows debit, failure and refund in its timeline")


def cancel_from_ui(cluster, browser, base, workflow_id):
    reason = "customer called to stop it (ui test)"
    browser.open(base + "/workflows/" + urllib.parse.quote(workflow_id, safe=""))
    wait_for("the cancel form", lambda: browser.driver.find_elements(By.ID, "cancel-form"), timeout=20)
    browser.shot("workflow-running")
    browser.driver.find_element(By.ID, "cancel-reason").send_keys(reason)
    browser.driver.find_element(By.ID, "cancel-operator").send_keys("ops-on-call")
    # Without the confirmation box the browser refuses to submit (required), and so would the server.
    browser.driver.find_element(By.ID, "cancel-confirm").click()
    browser.driver.find_element(By.ID, "cancel-submit").click()
    wait_for("the action's confirmation notice", lambda: "recorded in the history" in browser.driver.page_source, timeout=20)
    log("cancel submitted from the UI")

    def closed_compensated():
        browser.driver.refresh()
        status = browser.driver.find_element(By.CSS_SELECTOR, ".facts .status").text
        outcome = browser.driver.find_elements(By.CSS_SELECTOR, "[data-attribute='TransferOutcome']")
        return status == "completed" and outcome and outcome[0].text == "compensated"
    wait_for("the cancelled transfer to end compensated", closed_compensated, timeout=90, interval=1.0)
    rows = browser.timeline()
    requests = [d for t, d in rows if t == "WorkflowExecutionCancelRequested"]
    if not requests or reason not in requests[0] or "web-ui:ops-on-call@" not in requests[0]:
        raise Failure(f"the timeline's cancel request does not carry the reason and identity: {requests}")
    if not any(t == "ActivityTaskCompleted" and "activity=Refund#" in d for t, d in rows):
        raise Failure("the cancelled transfer was not refunded")
    result = browser.driver.find_element(By.ID, "result").text
    if "compensated" not in result:
        raise Failure(f"the result shows {result!r}")
    # The same record through the CLI's history (the auditable trail, not just the page).
    history = json.loads(cluster.cli("show", "--workflow-id", workflow_id, "--json"))
    recorded = [e for e in history["events"] if "workflowExecutionCancelRequested" in e]
    attributes = recorded[0]["workflowExecutionCancelRequested"] if recorded else {}
    if attributes.get("cause") != reason or not attributes.get("identity", "").startswith("web-ui:ops-on-call@"):
        raise Failure(f"history's cancel request: {attributes}")
    log(f"cancelled transfer ended compensated; history records {attributes}")
    browser.shot("workflow-cancelled")


def check_hostile_input(cluster, browser, base):
    """A workflow id and a signal payload carrying markup render as text; no script runs. `base`
    is a follower's UI: the signal is forwarded to the leader, and the page shows it once the
    follower has applied it."""
    hostile_id = "<script>window.__pwned=1</script>\"'><img src=x onerror=window.__pwned=2>"
    cluster.cli("start", "--type", "NoSuchWorkflow", "--task-queue", "ui-test-nobody", "--workflow-id", hostile_id,
                "--input", json.dumps({"note": "<b>bold?</b><script>window.__pwned=3</script>"}))

    def opened():  # the follower shows the run once it has applied its start
        browser.open(base + "/workflows/" + urllib.parse.quote(hostile_id, safe=""))
        return browser.driver.find_elements(By.ID, "signal-form")
    wait_for("the signal form on the follower", opened, timeout=20, interval=0.5)
    browser.driver.find_element(By.ID, "signal-name").send_keys("poke<svg onload=window.__pwned=4>")
    browser.driver.find_element(By.ID, "signal-input").send_keys('{"x": "<img src=x onerror=window.__pwned=5>"}')
    browser.driver.find_element(By.ID, "signal-reason").send_keys("<i>testing</i> escaping")
    browser.driver.find_element(By.ID, "signal-confirm").click()
    browser.driver.find_element(By.ID, "signal-submit").click()
    wait_for("the action's confirmation notice", lambda: "recorded in the history" in browser.driver.page_source, timeout=20)

    def signal_shown():
        if browser.driver.find_elements(By.CSS_SELECTOR, "#signals tbody tr"):
            return True
        browser.driver.refresh()
        return False
    wait_for("the signal to show on the follower", signal_shown, timeout=20, interval=0.5)
    pwned = browser.driver.execute_script("return window.__pwned === undefined ? null : window.__pwned")
    if pwned is not None:
        raise Failure(f"injected markup ran (window.__pwned = {pwned})")
    heading = browser.driver.find_element(By.ID, "workflow-id").text
    if heading != hostile_id:
        raise Failure(f"the workflow id renders as {heading!r}, not as its text")
    injected = browser.driver.find_elements(By.CSS_SELECTOR, "main script, main img, main svg, main b, main i")
    if injected:
        raise Failure(f"{len(injected)} injected elements in the page")
    signal_text = browser.driver.find_element(By.CSS_SELECTOR, "#signals tbody tr").text
    if "<img src=x onerror=window.__pwned=5>" not in signal_text or "<i>testing</i> escaping" not in signal_text:
        raise Failure(f"the signal row does not show the payload and reason as text: {signal_text!r}")
    log("hostile id, payload, signal name and reason rendered as text; nothing ran")
    browser.shot("workflow-hostile-input")


def check_failing_and_terminate(cluster, browser, base):
    """A workflow of a type no worker knows fails its workflow task over and over: it shows on the
    failing page with the worker's error, and is terminated from the UI with a reason."""
    workflow_id = "ui-test-unknown-type"
    cluster.cli("start", "--type", "NoSuchType", "--task-queue", "transfers", "--workflow-id", workflow_id)

    def listed():
        browser.open(base + "/failing?n=3")
        rows = [r for r in browser.driver.find_elements(By.CSS_SELECTOR, "#failing tbody tr") if workflow_id in r.text]
        return rows[0].text if rows else None
    row = wait_for("the unknown-type workflow on the failing page", listed, timeout=30, interval=0.5)
    if "workflow task" not in row or "WorkflowTypeNotRegistered" not in row:
        raise Failure(f"the failing page's row does not show the workflow task's error: {row!r}")
    log(f"failing page lists {workflow_id}: {row[:120]}…")
    browser.shot("failing")
    browser.driver.find_element(By.LINK_TEXT, workflow_id).click()
    wait_for("the terminate form", lambda: browser.driver.find_elements(By.ID, "terminate-form"), timeout=20)
    reason = "no worker will ever run NoSuchType (ui test)"
    browser.driver.find_element(By.ID, "terminate-reason").send_keys(reason)
    browser.driver.find_element(By.ID, "terminate-confirm").click()
    browser.driver.find_element(By.ID, "terminate-submit").click()
    wait_for("the terminated status", lambda: browser.driver.find_element(By.CSS_SELECTOR, ".facts .status").text == "terminated",
             timeout=20)
    terminated = [d for t, d in browser.timeline() if t == "WorkflowExecutionTerminated"]
    if not terminated or reason not in terminated[0] or "identity=web-ui@127.0.0.1" not in terminated[0]:
        raise Failure(f"the termination is not recorded with reason and identity: {terminated}")
    log(f"terminated from the UI: {terminated[0]}")
    browser.shot("workflow-terminated")


def check_cross_origin_post_refused(base, workflow_id, run_id):
    """A form post from another origin (or without the page's CSRF token) changes nothing."""
    path = "/workflows/" + urllib.parse.quote(workflow_id, safe="") + "/" + run_id + "/terminate"
    body = urllib.parse.urlencode({"reason": "forged", "confirm": "yes", "csrf": "not-the-token"}).encode()
    request = urllib.request.Request(base + path, data=body, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded",
                                              "Origin": "http://evil.example"})
    try:
        urllib.request.urlopen(request, timeout=10)
        raise Failure("a forged terminate was accepted")
    except urllib.error.HTTPError as error:
        if error.code != 403:
            raise Failure(f"a forged terminate got HTTP {error.code}, expected 403")
    log("forged cross-origin terminate refused with 403")


def run(arguments):
    directory = tempfile.mkdtemp(prefix="ballast-ui-test-")
    cluster = Cluster(directory)
    browser = None
    try:
        cluster.start()
        leader = wait_for("a leader", cluster.leader, timeout=60)
        log(f"cluster up, leader {leader}; ports {cluster.nodes}")
        cluster.spawn([cluster.transfers, "worker", "--address", cluster.api_addresses, "--ledger", cluster.ledger,
                       "--identity", "ui-test-worker"], "worker.log")
        start = subprocess.run([cluster.transfers, "start", "--address", cluster.api_addresses, "--ledger", cluster.ledger,
                                "--count", "16", "--concurrency", "8", "--fail-rate", "0.3", "--transient-rate", "0.2",
                                "--large-fraction", "0", "--seed", "7", "--timeout", "3m", "--json"],
                               capture_output=True, text=True, timeout=240)
        if start.returncode != 0:
            raise Failure(f"transfers start failed: {start.stdout} {start.stderr}")
        summary = json.loads(start.stdout.strip().splitlines()[-1])
        log(f"transfers: {summary}")
        if summary["compensated"] < 1:
            raise Failure(f"no transfer was compensated: {summary}")
        # One large transfer that waits for an approval that never comes (10 minutes): cancelled below.
        cluster.spawn([cluster.transfers, "start", "--address", cluster.api_addresses, "--ledger", cluster.ledger,
                       "--count", "1", "--large-fraction", "1", "--no-approve", "--approval-timeout", "10m",
                       "--seed", "8", "--timeout", "5m"], "start-waiting.log")
        waiting_id = "transfer-8-0"
        wait_for("the waiting transfer to start", lambda: "running" in cluster.cli("describe", "--workflow-id", waiting_id), timeout=60)

        browser = Browser()
        leader = wait_for("a leader", cluster.leader, timeout=30)
        base = cluster.ui(leader)
        check_cluster_page(cluster, browser, leader)
        links = check_compensated_filter(cluster, browser, base, summary["compensated"])
        check_compensated_timeline(browser, links)
        cancel_from_ui(cluster, browser, base, waiting_id)
        # A follower's UI lists the same runs from its own applied state.
        follower = next(i for i in cluster.nodes if i != leader)

        def follower_count():
            filter_list(browser, cluster.ui(follower), "WorkflowType = 'Transfer'")
            return int(browser.driver.find_element(By.ID, "total-count").text) == summary["planned"] + 1
        wait_for(f"the follower's list to count {summary['planned'] + 1} transfers", follower_count, timeout=20, interval=0.5)
        shown = int(browser.driver.find_element(By.ID, "total-count").text)
        log(f"follower {follower} lists {shown} transfers")
        browser.shot("workflows-follower")
        filter_list(browser, base, "")
        browser.shot("workflows")
        check_failing_and_terminate(cluster, browser, base)
        check_hostile_input(cluster, browser, cluster.ui(follower))
        describe = json.loads(cluster.cli("describe", "--workflow-id", waiting_id, "--json"))
        check_cross_origin_post_refused(base, waiting_id, describe["info"]["execution"]["runId"])
        if arguments.update_docs:
            os.makedirs(DOCS_UI, exist_ok=True)
            for path in browser.screenshots:
                shutil.copy(path, DOCS_UI)
            log(f"copied {len(browser.screenshots)} screenshots to {DOCS_UI}")
        log("all browser checks passed")
        return 0
    except Failure as failure:
        log(f"FAILED: {failure}")
        if browser is not None:
            try:
                browser.shot("failure")
            except WebDriverException:
                pass
        print(cluster.logs(), file=sys.stderr)
        return 1
    finally:
        if browser is not None:
            browser.quit()
        cluster.stop()
        if arguments.keep:
            log(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update-docs", action="store_true", help="copy the screenshots to docs/ui/")
    parser.add_argument("--keep", action="store_true", help="keep the cluster's directory (logs, data) afterwards")
    sys.exit(run(parser.parse_args()))
