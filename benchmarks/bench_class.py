"""A class of students on one server: latency, errors and memory under load (issue 13).

Run from the repository root::

    python benchmarks/bench_class.py                  # 30 students + 1 browser, settle 180 s
    python benchmarks/bench_class.py --quick          # 4 students + 1 browser, settle 20 s
    python benchmarks/bench_class.py --model vgg16-random --sessions 30 --browsers 0

It starts ``streamlit run streamlit_app.py`` on a free local port and

1. runs one simulated student alone (the single-session level of latency and memory; it picks
   another image than the class, so the class's explanations are not already cached, but it
   does warm the models, the traces and the default embedding);
2. runs N simulated students at once (``--sessions``, started over ``--ramp`` seconds), each
   one websocket speaking Streamlit's own protocol (:mod:`benchmarks.st_client`, no browser),
   plus ``--browsers`` real headless Chromium sessions that measure what a student sees;
3. closes every session and keeps sampling the server's memory for ``--settle`` seconds.

The class script: open Home, (select the model), press a dataset image's "Use" button, open
Explain (its default methods run), choose Grad-CAM and SmoothGrad, open Occlusion (and press
its compute button when the model is big enough to have one), open Embeddings with the default
sample. Every step's latency is server side: from sending the BackMsg to ``script_finished``;
"usable page" is connecting plus the time to the first element in the main area, and
"Grad-CAM shown" the time until the Grad-CAM map arrives.

The server's resident memory (the streamlit process and its children, from /proc) is sampled
every 0.5 s over the whole run. The figures are compared with the issue's targets and written
as JSON (``artifacts/bench_class.json``). The exit code is 0 whatever the figures are; it is
non-zero only when the harness itself failed (the app did not start, a crash here).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import traceback
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.st_client import StreamlitClient  # noqa: E402

# ------------------------------------------------------------------ what the harness drives
# Widget keys of the app (app_pages/*.py, ui/state.py): renaming one there breaks the harness
# loudly (a KeyError naming the keys on the page), never silently.
MODEL_SELECT = "vz_model_select"  # the sidebar model picker
USE_PREFIX = "use_"  # Home's "Use" buttons under the dataset thumbnails: use_<dataset>_<index>
METHODS_SELECT = "xp_methods"  # Explain's methods multiselect (options: the methods' names)
GRADCAM_MAP = "xp_ov_gradcam"  # Explain's Grad-CAM overlay chart
CLASS_METHODS = ("Grad-CAM", "SmoothGrad")
OCCLUSION_GO = "occ_go"  # Occlusion's compute button (only on models bigger than 64x64)
DEFAULT_MODEL = "fashion_vgg"
MODEL_ALIASES = {"vgg16_random": "vgg16-random", "vgg16_random_weights": "vgg16-random"}
#: The pages of the class script: url path -> the start of the page's title (its h1).
PAGES = {"": "vizcore", "explain": "Explain a prediction", "occlusion": "Occlusion",
         "embeddings": "Embeddings"}
CLASS_IMAGE, SOLO_IMAGE = 3, 0  # which "Use" button of the strip (same image for the class)

# ------------------------------------------------------------------ targets (issue 13)
GB = 1024.0  # MiB
TARGETS = {"usable_p95_s": 5.0, "gradcam_p95_s": 2.0, "browser_switch_p95_s": 2.0,
           "peak_rss_mb": 2.0 * GB, "settle_margin_mb": 200.0}
USABLE_STEP, GRADCAM_STEP = "home: usable page", "explain: Grad-CAM shown"


def model_labels() -> dict[str, str]:
    """Model key -> the label the sidebar picker shows for it."""
    from vizcore.models import BUILTIN  # light: no TensorFlow

    labels = {k: label for k, (_, label) in BUILTIN.items()}
    labels["vgg16"] = "VGG16 (ImageNet weights)"
    labels["vgg16-random"] = "VGG16, random weights (architecture only)"
    return labels


# ------------------------------------------------------------------ the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``streamlit run streamlit_app.py`` on a free port, its log in a file."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> None:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
                   PYTHONPATH=str(ROOT))
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "w")  # noqa: SIM115 - the child writes to it until stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
             "--server.port", str(self.port), "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
             "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {self.proc.returncode}; "
                                   f"see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"streamlit did not answer on {self.url} within {timeout:.0f} s")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the group this harness started
            self.proc.wait(15)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)

    def rss_mb(self) -> float:
        """Resident memory of the server process and its descendants (MiB, from /proc)."""
        if not self.alive():
            return 0.0
        children: dict[int, list[int]] = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                    children.setdefault(ppid, []).append(int(d))
                except (OSError, ValueError, IndexError):
                    continue
        total, todo = 0, [self.proc.pid]
        while todo:
            pid = todo.pop()
            todo.extend(children.get(pid, []))
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
                            break
            except OSError:
                continue
        return total / 1024.0

    def log_errors(self) -> list[str]:
        """Lines of the server log that report an error (tracebacks, ERROR/CRITICAL logs)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        pat = re.compile(r"Traceback|\bERROR\b|CRITICAL|Exception in|Error:|MemoryError|Killed")
        return [line.rstrip() for line in text.splitlines() if pat.search(line)]


class MemorySampler:
    """Samples the server's RSS every ``interval`` seconds, each sample tagged with a phase."""

    def __init__(self, server: Server, interval: float = 0.5) -> None:
        self.server, self.interval = server, interval
        self.samples: list[tuple[float, str, float]] = []  # (seconds since start, phase, MiB)
        self.phase = "idle"
        self.t0 = time.perf_counter()
        self._task: asyncio.Task | None = None

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def sample(self) -> float:
        mb = self.server.rss_mb()
        self.samples.append((round(self.now(), 2), self.phase, round(mb, 1)))
        return mb

    async def _loop(self) -> None:
        while True:
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def peak(self, phase: str | None = None) -> float:
        vals = [mb for _, ph, mb in self.samples if phase is None or ph == phase]
        return max(vals, default=0.0)

    def last(self, phase: str | None = None) -> float:
        vals = [mb for _, ph, mb in self.samples if phase is None or ph == phase]
        return vals[-1] if vals else 0.0


# ------------------------------------------------------------------ records


@dataclass
class Step:
    """One measured step of one student."""

    who: str  # "solo", "s07", "browser"
    phase: str  # "solo" or "class"
    step: str
    seconds: float | None
    ok: bool = True
    status: str = "ok"
    exceptions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Recorder:
    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.incomplete: list[str] = []  # students that could not finish their script

    def add(self, who: str, phase: str, step: str, res=None, seconds: float | None = None,
            ) -> Step:
        if res is not None:
            s = Step(who, phase, step, res.seconds if seconds is None else seconds, res.ok,
                     res.status, list(res.exceptions), list(res.errors))
        else:
            s = Step(who, phase, step, seconds)
        self.steps.append(s)
        return s


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolation percentile (q in 0..100), None for no values."""
    v = sorted(values)
    if not v:
        return None
    k = (len(v) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


# ------------------------------------------------------------------ a simulated student


class StepFailed(Exception):
    pass


async def student(who: str, phase: str, url: str, rec: Recorder, *, model_label: str | None,
                  image: int, think: float, timeout: float, rng: random.Random,
                  done: list[int]) -> None:
    """One student through the class script over the websocket protocol."""

    async def pause() -> None:
        if think > 0:
            await asyncio.sleep(think * rng.uniform(0.5, 1.5))

    def check(step: str, res, seconds: float | None = None):
        rec.add(who, phase, step, res, seconds)
        done[0] += 1
        if not res.ok:
            raise StepFailed(f"{who}: {step}: {res.status} ({'; '.join(res.errors)[:200]})")
        return res

    client = StreamlitClient(url, timeout=timeout)
    try:
        t0 = time.perf_counter()
        await client.connect()
        connect_s = time.perf_counter() - t0
        res = await client.run()
        usable = None if res.first_main is None else connect_s + res.first_main
        rec.add(who, phase, USABLE_STEP, res, seconds=usable)
        check("home: loaded", res, connect_s + res.seconds)
        if model_label is not None:
            if model_label not in client.options(MODEL_SELECT):
                raise StepFailed(f"{who}: no model {model_label!r} in the picker; options: "
                                 f"{client.options(MODEL_SELECT)}")
            await pause()
            check("home: select model", await client.run(set={MODEL_SELECT: model_label}))
        await pause()
        uses = [k for _, k in sorted((p, k) for p, k in _keys_in_order(client.last)
                                     if k.startswith(USE_PREFIX))]
        if not uses:
            raise StepFailed(f"{who}: no '{USE_PREFIX}*' button on Home")
        check("home: pick image", await client.run(press=[uses[image % len(uses)]]))
        await pause()
        res = await client.run(page="explain")
        rec.add(who, phase, "explain: first render", res, seconds=res.first_main)
        rec.add(who, phase, GRADCAM_STEP, res, seconds=res.arrived.get(GRADCAM_MAP))
        check("explain: loaded", res)
        await pause()
        opts = client.options(METHODS_SELECT)
        chosen = [m for m in CLASS_METHODS if m in opts]
        res = await client.run(set={METHODS_SELECT: chosen})
        if len(chosen) < len(CLASS_METHODS):
            res.errors.append(f"methods missing from the picker: {set(CLASS_METHODS) - set(opts)}")
        check("explain: Grad-CAM + SmoothGrad", res)
        await pause()
        res = await client.run(page="occlusion")
        rec.add(who, phase, "occlusion: first render", res, seconds=res.first_main)
        check("occlusion: loaded", res)
        if OCCLUSION_GO in res.widgets():
            await pause()
            check("occlusion: compute", await client.run(press=[OCCLUSION_GO]))
        await pause()
        res = await client.run(page="embeddings")
        rec.add(who, phase, "embeddings: first render", res, seconds=res.first_main)
        check("embeddings: loaded", res)
    except StepFailed as exc:
        rec.incomplete.append(str(exc))
    except Exception as exc:  # a protocol failure of this student is a result, not a crash
        rec.incomplete.append(f"{who}: {type(exc).__name__}: {exc}")
        rec.add(who, phase, "protocol error", None, None).errors.append(str(exc))
    finally:
        await client.close()


def _keys_in_order(res) -> list[tuple[tuple[int, ...], str]]:
    from benchmarks.st_client import element_id, widget_key

    out = []
    for path, el in res.elements.items():
        key = widget_key(element_id(el))
        if key:
            out.append((path, key))
    return out


#: Steps a student completes (for the completion rate), without the optional ones.
def expected_steps(model_select: bool) -> list[str]:
    steps = ["home: loaded", "home: pick image", "explain: loaded",
             "explain: Grad-CAM + SmoothGrad", "occlusion: loaded", "embeddings: loaded"]
    return (["home: select model"] if model_select else []) + steps


# ------------------------------------------------------------------ a real browser

_IDLE_JS = """([h]) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') === 'running') return false;
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main) return false;
  if (![...main.querySelectorAll('h1')].some(e => e.innerText.trim().startsWith(h)))
    return false;
  const st = document.querySelector('[data-testid="stStatusWidget"]');
  return !(st && /Running/i.test(st.innerText));
}"""


async def browser_student(who: str, url: str, rec: Recorder, *, model_label: str | None,
                          image: int, think: float, timeout: float) -> dict:
    """One headless Chromium through the class pages: time from a click (or the navigation)
    until the page's h1 is shown and the app no longer says it is running."""
    from playwright.async_api import async_playwright

    from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS

    switches: list[float] = []
    info: dict = {"switches": switches, "exceptions": [], "error": None}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                          headless=True)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})

            async def settle(heading: str, t0: float) -> float:
                await page.wait_for_function(_IDLE_JS, arg=[heading], polling=50,
                                             timeout=timeout * 1000)
                return time.perf_counter() - t0

            async def exceptions() -> list[str]:
                return [await e.inner_text()
                        for e in await page.locator('[data-testid="stException"]').all()]

            page.set_default_timeout(timeout * 1000)
            t0 = time.perf_counter()
            await page.goto(url, wait_until="commit")  # a busy server serves its page late
            rec.add(who, "class", "browser: open home", seconds=await settle("vizcore", t0))
            if model_label is not None:
                t0 = time.perf_counter()
                await page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]'
                                   ).first.click()
                await page.get_by_role("option", name=model_label).click()
                await page.wait_for_timeout(300)
                rec.add(who, "class", "browser: select model", seconds=await settle("vizcore",
                                                                                    t0))
            await asyncio.sleep(think)
            t0 = time.perf_counter()
            await page.get_by_role("button", name="Use", exact=True).nth(image).click()
            await page.wait_for_timeout(300)  # the click's run starts
            rec.add(who, "class", "browser: pick image", seconds=await settle("vizcore", t0))
            info["exceptions"] += await exceptions()
            nav = page.locator('[data-testid="stSidebarNav"]')
            for path in ["explain", "occlusion", "embeddings", "", "explain", "occlusion"]:
                await asyncio.sleep(think)
                heading = PAGES[path]
                t0 = time.perf_counter()
                await nav.locator(f'a[href$="/{path}"]').first.click()
                seconds = await settle(heading, t0)
                switches.append(seconds)
                rec.add(who, "class", f"browser: switch to {path or 'home'}", seconds=seconds)
                info["exceptions"] += await exceptions()
        except Exception as exc:
            info["error"] = f"{type(exc).__name__}: {exc}"
            rec.incomplete.append(f"{who}: {info['error'][:300]}")
        finally:
            await browser.close()
    if info["exceptions"]:
        rec.add(who, "class", "browser: exception boxes", seconds=None).exceptions.extend(
            info["exceptions"])
    return info


def browser_available() -> str | None:
    """None when a headless Chromium can be driven, else the reason it cannot."""
    try:
        import playwright  # noqa: F401

        from tests.e2e.browser import CHROMIUM
    except ImportError as exc:
        return f"playwright missing ({exc})"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM}"
    return None


# ------------------------------------------------------------------ the run


async def run_bench(args, server: Server, rec: Recorder, mem: MemorySampler) -> dict:
    label = None
    model = MODEL_ALIASES.get(args.model, args.model)
    if model != DEFAULT_MODEL:
        labels = model_labels()
        label = labels.get(model, model)  # a key, or already a label
    notes: dict = {"model": model, "model_label": label}
    mem.start()
    await asyncio.sleep(1.0)
    notes["idle_mb"] = mem.sample()
    notes["load_average"] = {"start": os.getloadavg()}

    # 1. one student alone: the single-session level
    done = [0]
    if not args.no_solo:
        mem.phase = "solo"
        print(f"[{mem.now():6.1f}s] one student alone ...", flush=True)
        await student("solo", "solo", server.url, rec, model_label=label, image=SOLO_IMAGE,
                      think=0.0, timeout=args.step_timeout, rng=random.Random(0), done=done)
        notes["single_session_mb"] = mem.sample()
        mem.phase = "solo-closed"
        await asyncio.sleep(2.0)

    # 2. the class (and the browsers), started over the ramp
    mem.phase = "class"
    n = args.sessions
    print(f"[{mem.now():6.1f}s] {n} students over {args.ramp:.0f} s + {args.browsers} "
          f"browser(s) ...", flush=True)
    done = [0]
    total = n * len(expected_steps(label is not None))
    tasks = []
    t_class = time.perf_counter()
    for i in range(n):
        delay = args.ramp * i / max(n - 1, 1)
        image = CLASS_IMAGE if args.images == "same" else i
        tasks.append(asyncio.create_task(_delayed(delay, student(
            f"s{i:02d}", "class", server.url, rec, model_label=label, image=image,
            think=args.think, timeout=args.step_timeout, rng=random.Random(i + 1), done=done))))
    browsers = []
    why_not = browser_available() if args.browsers else None
    if why_not:
        print(f"  no browser session: {why_not}", flush=True)
        notes["browser_skipped"] = why_not
    else:
        for b in range(args.browsers):
            browsers.append(asyncio.create_task(browser_student(
                f"browser{b}", server.url, rec, model_label=label, image=CLASS_IMAGE,
                think=args.think, timeout=args.step_timeout)))

    async def progress() -> None:
        while True:
            await asyncio.sleep(10)
            print(f"[{mem.now():6.1f}s] {done[0]}/{total} steps done, RSS "
                  f"{mem.last():.0f} MiB (peak {mem.peak():.0f})", flush=True)

    ticker = asyncio.create_task(progress())
    await asyncio.gather(*tasks)
    notes["class_seconds"] = time.perf_counter() - t_class
    notes["load_average"]["end of class"] = os.getloadavg()
    notes["browsers"] = [await b for b in browsers]
    ticker.cancel()
    print(f"[{mem.now():6.1f}s] class done in {notes['class_seconds']:.0f} s; sessions "
          f"closed, settling for {args.settle:.0f} s ...", flush=True)

    # 3. every session closed: does the memory come back?
    mem.phase = "settle"
    t_close = mem.now()
    await asyncio.sleep(args.settle)
    await mem.stop()
    notes["settle_from"] = t_close
    return notes


async def _delayed(delay: float, coro):
    await asyncio.sleep(delay)
    return await coro


# ------------------------------------------------------------------ report


def summarize(rec: Recorder, mem: MemorySampler, notes: dict, server: Server, args) -> dict:
    def stats(rows: list[Step]) -> dict:
        vals = [s.seconds for s in rows if s.seconds is not None]
        return {"n": len(vals), "p50": percentile(vals, 50), "p95": percentile(vals, 95),
                "max": max(vals, default=None),
                "errors": sum(bool(s.errors) or not s.ok for s in rows),
                "exceptions": sum(len(s.exceptions) for s in rows)}

    order: list[str] = []
    for s in rec.steps:
        if s.step not in order:
            order.append(s.step)
    steps = {}
    for name in order:
        cls = [s for s in rec.steps if s.step == name and s.phase == "class"]
        solo = [s.seconds for s in rec.steps if s.step == name and s.phase == "solo"]
        steps[name] = {**stats(cls), "solo": solo[0] if solo else None}
    switches = [s.seconds for s in rec.steps
                if s.step.startswith("browser: switch") and s.seconds is not None]
    steps["browser: page switches (all)"] = {
        "n": len(switches), "p50": percentile(switches, 50), "p95": percentile(switches, 95),
        "max": max(switches, default=None), "errors": 0, "exceptions": 0, "solo": None}

    class_steps = [s for s in rec.steps if s.phase == "class"
                   and not s.step.startswith("browser")]
    need = expected_steps(notes.get("model_label") is not None)
    completed = sum(1 for s in class_steps if s.step in need and s.ok)
    expected = args.sessions * len(need)
    exceptions = [e for s in rec.steps for e in s.exceptions]
    error_boxes = [e for s in rec.steps for e in s.errors]
    log_errors = server.log_errors()

    settle = [(t, mb) for t, ph, mb in mem.samples if ph == "settle"]
    single = notes.get("single_session_mb")
    after = settle[-1][1] if settle else None
    back_at = None
    if single is not None:
        back_at = next((t - notes["settle_from"] for t, mb in settle
                        if mb <= single + TARGETS["settle_margin_mb"]), None)
    memory = {"idle_mb": notes.get("idle_mb"), "single_session_mb": single,
              "peak_mb": mem.peak(), "peak_class_mb": mem.peak("class"),
              "after_close_mb": after, "settle_seconds": args.settle,
              "back_within_margin_after_s": back_at,
              "samples": [list(s) for s in mem.samples]}

    def target(name, value, limit, ok=None):
        return {"name": name, "value": value, "limit": limit,
                "ok": (value is not None and value <= limit) if ok is None else ok}

    targets = [
        target("steps completed (%)", 100.0 * completed / max(expected, 1), 100.0,
               ok=completed == expected),
        target("exception boxes", len(exceptions), 0),
        target("errors in the server log", len(log_errors), 0),
        target("usable page p95 (s)", steps.get(USABLE_STEP, {}).get("p95"),
               TARGETS["usable_p95_s"]),
        target("Grad-CAM p95 (s)", steps.get(GRADCAM_STEP, {}).get("p95"),
               TARGETS["gradcam_p95_s"]),
        target("browser page switch p95 (s)", steps["browser: page switches (all)"]["p95"],
               TARGETS["browser_switch_p95_s"]),
        target("peak RSS (MiB)", memory["peak_mb"], TARGETS["peak_rss_mb"]),
        target("RSS after close - single session (MiB)",
               None if single is None or after is None else after - single,
               TARGETS["settle_margin_mb"]),
    ]
    harness = resource.getrusage(resource.RUSAGE_SELF)
    return {"config": {k: v for k, v in vars(args).items() if k != "json"},
            "model": notes.get("model"), "server_url": server.url,
            "machine": {"cpus": os.cpu_count(), "load_average": notes.get("load_average"),
                        "harness_cpu_s": round(harness.ru_utime + harness.ru_stime, 1)},
            "server_log": str(server.log_path), "class_seconds": notes.get("class_seconds"),
            "steps": steps, "completed_steps": completed, "expected_steps": expected,
            "incomplete": rec.incomplete, "exceptions": exceptions,
            "error_boxes": error_boxes, "server_log_errors": log_errors[:50],
            "browser": notes.get("browsers"), "browser_skipped": notes.get("browser_skipped"),
            "memory": memory, "targets": targets,
            "raw_steps": [asdict(s) for s in rec.steps]}


def _fmt(v, digits=2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def print_report(report: dict) -> None:
    print(f"\nclass of {report['config']['sessions']} on {report['model']} "
          f"(+{report['config']['browsers']} browser), class phase "
          f"{_fmt(report['class_seconds'], 0)} s; times in seconds")
    head = (f"{'step':<34} {'solo':>7} {'n':>4} {'p50':>7} {'p95':>7} {'max':>7} "
            f"{'err':>4} {'exc':>4}")
    print(head)
    print("-" * len(head))
    for name, s in report["steps"].items():
        print(f"{name:<34} {_fmt(s['solo']):>7} {s['n']:>4} {_fmt(s['p50']):>7} "
              f"{_fmt(s['p95']):>7} {_fmt(s['max']):>7} {s['errors']:>4} {s['exceptions']:>4}")
    m = report["memory"]
    print(f"\nserver RSS (MiB): idle {_fmt(m['idle_mb'], 0)}, single session "
          f"{_fmt(m['single_session_mb'], 0)}, peak {_fmt(m['peak_mb'], 0)} (class "
          f"{_fmt(m['peak_class_mb'], 0)}), {m['settle_seconds']:.0f} s after the sessions "
          f"closed {_fmt(m['after_close_mb'], 0)}; back within "
          f"{TARGETS['settle_margin_mb']:.0f} MiB of the single session after "
          f"{_fmt(m['back_within_margin_after_s'], 1)} s")
    mach = report["machine"]
    loads = ", ".join(f"{k} {v[0]:.1f}" for k, v in (mach["load_average"] or {}).items())
    print(f"machine: {mach['cpus']} CPUs, load average (1 min) {loads}; the harness itself "
          f"used {mach['harness_cpu_s']:.0f} s of CPU")
    print(f"steps completed: {report['completed_steps']}/{report['expected_steps']}")
    for what in ("incomplete", "exceptions", "error_boxes", "server_log_errors"):
        items = report[what]
        if items:
            print(f"{what} ({len(items)}):")
            for line in dict.fromkeys(items):  # unique, in order
                print(f"  {line[:240]}")
    print("\ntargets (issue 13):")
    for t in report["targets"]:
        flag = "ok  " if t["ok"] else "MISS"
        print(f"  {flag} {t['name']:<42} {_fmt(t['value'])} (limit {_fmt(t['limit'])})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 students, settle 20 s")
    ap.add_argument("--sessions", type=int, help="simulated students (default 30, quick 4)")
    ap.add_argument("--browsers", type=int, default=1, help="real Chromium sessions (0: none)")
    ap.add_argument("--ramp", type=float, help="seconds over which students start "
                    "(default 10, quick 2)")
    ap.add_argument("--think", type=float, default=1.0,
                    help="mean pause between a student's steps (s)")
    ap.add_argument("--settle", type=float, help="seconds of memory sampling after the "
                    "sessions close (default 180, quick 20)")
    ap.add_argument("--model", default=DEFAULT_MODEL,
                    help="model key (fashion_vgg, fashion_gap, vgg16-random, vgg16) or label")
    ap.add_argument("--images", choices=["same", "spread"], default="same",
                    help="every student picks the same image, or each another one")
    ap.add_argument("--no-solo", action="store_true",
                    help="skip the single-session run (a cold server for the class)")
    ap.add_argument("--step-timeout", type=float, default=600.0, help="seconds per step")
    ap.add_argument("--json", type=Path, default=ROOT / "artifacts" / "bench_class.json")
    args = ap.parse_args(argv)
    if args.sessions is None:
        args.sessions = 4 if args.quick else 30
    if args.ramp is None:
        args.ramp = 2.0 if args.quick else 10.0
    if args.settle is None:
        args.settle = 20.0 if args.quick else 180.0

    server = Server(ROOT / "artifacts" / "bench_class-server.log")
    rec = Recorder()
    try:
        t0 = time.perf_counter()
        server.start()
        print(f"app on {server.url} after {time.perf_counter() - t0:.1f} s "
              f"(log: {server.log_path.relative_to(ROOT)})", flush=True)
        mem = MemorySampler(server)
        notes = asyncio.run(run_bench(args, server, rec, mem))
        if not server.alive():
            notes["server_exit"] = server.proc.returncode
            print(f"the server exited with code {server.proc.returncode}", flush=True)
        report = summarize(rec, mem, notes, server, args)
        report["server_exit"] = notes.get("server_exit")
    except Exception:
        traceback.print_exc()
        print("bench_class: the harness failed", file=sys.stderr)
        return 2
    finally:
        server.stop()
    print_report(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1, default=str))
    print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
