"""A small client for Streamlit's own websocket protocol: one simulated user, no browser.

It speaks what the browser speaks at ``ws://host:port/_stcore/stream``: binary ``BackMsg``
protobufs up (a ``rerun_script`` carrying a ``ClientState``: page, query string and widget
states), ``ForwardMsg`` protobufs down (``new_session``, ``navigation``, ``delta``,
``script_finished`` ...), using the protobuf classes of the installed ``streamlit``.

Widgets are addressed by their user key (``key=`` in the app): the server's widget id ends
with it (``$$ID-<hash>-<key>``), and the id is learnt from the elements of the previous run,
as a browser learns it from what it draws. A value is sent once, in the run that changes it;
the server keeps it (as it does for a browser, which re-sends the same value).

Example::

    async with StreamlitClient("http://127.0.0.1:8501") as st:
        home = await st.run()                                 # open the default page
        await st.run(press=["use_fashion_mnist_3"])           # press a button
        xp = await st.run(page="explain")                     # navigate
        xp = await st.run(set={"xp_methods": ["Grad-CAM"]})   # change a widget
        assert not xp.exceptions and xp.ok
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.Slider_pb2 import Slider
from streamlit.proto.WidgetStates_pb2 import WidgetState

#: ScriptFinishedStatus values.
_FINISHED = {ForwardMsg.FINISHED_SUCCESSFULLY: "ok",
             ForwardMsg.FINISHED_WITH_COMPILE_ERROR: "compile_error",
             ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY: "ok"}
_MAIN = 0  # delta_path[0] of the main container (1 is the sidebar)

#: Which WidgetState field carries a value, by element type (Streamlit's serde ``value_type``).
_VALUE_FIELD = {"selectbox": "string_value", "radio": "string_value",
                "text_input": "string_value", "text_area": "string_value",
                "color_picker": "string_value", "multiselect": "string_array_value",
                "button_group": "string_array_value", "checkbox": "bool_value",
                "number_input": "double_value"}
_TRIGGERS = {"button", "download_button"}


class ProtocolError(RuntimeError):
    """The server closed the connection or answered with something the client cannot use."""


def stream_url(url: str) -> str:
    """``http://host:port[/base]`` (or a ws:// URL) -> ``ws://host:port[/base]/_stcore/stream``."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    scheme = "wss" if parts.scheme in ("https", "wss") else "ws"
    path = parts.path.rstrip("/")
    if not path.endswith("/_stcore/stream"):
        path += "/_stcore/stream"
    return f"{scheme}://{parts.netloc}{path}"


def widget_key(element_id: str) -> str | None:
    """The user key of a widget id ``$$ID-<hash>-<key>`` (None when it has none)."""
    if not element_id.startswith("$$ID-"):
        return None
    key = element_id.split("-", 2)[-1]
    return None if key == "None" else key


def element_kind(el: Element) -> str:
    return el.WhichOneof("type") or ""


def element_id(el: Element) -> str:
    """The widget (or keyed element) id of an element, '' when it has none."""
    sub = getattr(el, element_kind(el), None)
    return getattr(sub, "id", "") if sub is not None else ""


@dataclass
class RunResult:
    """What one script run (a rerun request, through any ``st.rerun``) sent back.

    Attributes:
        page: The page's url path (``""`` for the default page) as the server resolved it.
        status: ``"ok"``, ``"compile_error"``, ``"timeout"`` or ``"disconnected"``.
        seconds: From sending the BackMsg to the final ``script_finished``.
        first_delta: Seconds to the first delta of the run (None if there was none).
        first_main: Seconds to the first delta in the main area (the page is on screen).
        elements: The final elements by delta path (the page as a browser would show it).
        arrived: Seconds from the request to the first arrival of each keyed element.
        exceptions: ``"Type: message"`` of every exception element sent during the run.
        errors: The text of every ``st.error`` box sent during the run, plus protocol errors
            (page not found, compile errors reported as session events).
        reruns: How many times the script restarted itself (``st.rerun``) before finishing.
    """

    page: str = ""
    status: str = "timeout"
    seconds: float = 0.0
    first_delta: float | None = None
    first_main: float | None = None
    elements: dict[tuple[int, ...], Element] = field(default_factory=dict)
    arrived: dict[str, float] = field(default_factory=dict)
    exceptions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    reruns: int = 0

    @property
    def ok(self) -> bool:
        """The run finished (no timeout, no disconnect, no compile error)."""
        return self.status == "ok"

    def widgets(self) -> dict[str, tuple[str, Element]]:
        """Keyed elements of the final page: user key -> (element id, element)."""
        out = {}
        for el in self.elements.values():
            eid = element_id(el)
            key = widget_key(eid) if eid else None
            if key is not None:
                out[key] = (eid, el)
        return out

    def element(self, key: str) -> Element | None:
        """The final element with user key ``key`` (a widget, a keyed chart), or None."""
        hit = self.widgets().get(key)
        return hit[1] if hit else None

    def of_kind(self, kind: str) -> list[Element]:
        """The final elements of one type (``"markdown"``, ``"plotly_chart"`` ...), in order."""
        return [el for _, el in sorted(self.elements.items()) if element_kind(el) == kind]

    def texts(self) -> list[str]:
        """The body of every markdown/heading/caption/text element, in page order."""
        out = []
        for _, el in sorted(self.elements.items()):
            kind = element_kind(el)
            if kind in ("markdown", "heading", "text"):
                out.append(getattr(el, kind).body)
        return out


class StreamlitClient:
    """One simulated browser tab: one websocket, one Streamlit session.

    Args:
        url: The app's base URL (``http://127.0.0.1:8501``) or its stream URL.
        timeout: Default seconds a run may take before :meth:`run` gives up.
    """

    def __init__(self, url: str, timeout: float = 300.0) -> None:
        self.url = stream_url(url)
        self.timeout = timeout
        self.pages: dict[str, str] = {}  # url path (and page title) -> page_script_hash
        self.page_hash = ""  # the page the server ran last
        self.session_id = ""
        self.last: RunResult | None = None
        self._ws: Any = None
        self._inbox: asyncio.Queue = asyncio.Queue()
        self._reader: asyncio.Task | None = None
        self.closed_reason: str | None = None

    # ------------------------------------------------------------------ connection
    async def connect(self, open_timeout: float = 30.0) -> StreamlitClient:
        from websockets.asyncio.client import connect

        # no client pings: a busy server answers late, and a dropped socket would be the
        # harness's fault, not the app's; no size limit: plotly specs can be large
        self._ws = await connect(self.url, subprotocols=["streamlit"], max_size=None,
                                 compression=None, ping_interval=None,
                                 open_timeout=open_timeout, proxy=None)
        self._reader = asyncio.create_task(self._read())
        return self

    async def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        self._ws = self._reader = None

    async def __aenter__(self) -> StreamlitClient:
        return await self.connect()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def _read(self) -> None:
        try:
            async for data in self._ws:
                if isinstance(data, str):
                    continue
                msg = ForwardMsg()
                msg.ParseFromString(data)
                self._inbox.put_nowait((time.perf_counter(), msg))
        except Exception as exc:  # the connection dropped
            self.closed_reason = f"{type(exc).__name__}: {exc}"
        finally:
            self.closed_reason = self.closed_reason or "connection closed by the server"
            self._inbox.put_nowait((time.perf_counter(), None))

    async def send(self, msg: BackMsg) -> None:
        await self._ws.send(msg.SerializeToString())

    # ------------------------------------------------------------------ widgets
    def widget_state(self, key: str, value: Any = True, trigger: bool = False) -> WidgetState:
        """The WidgetState that sets the widget with user key ``key`` (seen in the last run).

        The field follows the element type: options of selectboxes, radios and multiselects are
        given as their *displayed* labels (what ``format_func`` returns), sliders as a number
        or a list (a range), buttons are pressed (``trigger``).
        """
        known = self.last.widgets() if self.last else {}
        if key not in known:
            raise KeyError(f"no widget with key {key!r} on the page; keys: {sorted(known)}")
        eid, el = known[key]
        kind = element_kind(el)
        ws = WidgetState(id=eid)
        if trigger or kind in _TRIGGERS:
            ws.trigger_value = True
        elif kind == "slider":
            values = list(value) if isinstance(value, list | tuple) else [value]
            if el.slider.type == Slider.SELECT_SLIDER:
                ws.string_array_value.data.extend(str(v) for v in values)
            else:
                ws.double_array_value.data.extend(float(v) for v in values)
        elif _VALUE_FIELD.get(kind) == "string_array_value":
            getattr(ws, _VALUE_FIELD[kind]).data.extend(str(v) for v in value)
        elif kind in _VALUE_FIELD:
            setattr(ws, _VALUE_FIELD[kind], value)
        else:
            raise TypeError(f"widget {key!r} is a {kind!r}: the client cannot set it")
        return ws

    def options(self, key: str) -> list[str]:
        """The displayed options of a selectbox, radio or multiselect of the last run."""
        el = self.last.element(key) if self.last else None
        if el is None:
            raise KeyError(f"no widget with key {key!r} on the page")
        return list(getattr(el, element_kind(el)).options)

    def page_hash_of(self, page: str) -> str:
        """The script hash of a page given by its url path (``"explain"``) or its title."""
        if page in self.pages:
            return self.pages[page]
        raise KeyError(f"unknown page {page!r}; pages: {sorted(self.pages)}")

    # ------------------------------------------------------------------ runs
    async def run(self, page: str | None = None, *, set: dict[str, Any] | None = None,  # noqa: A002
                  press: list[str] | tuple[str, ...] = (), query_string: str = "",
                  timeout: float | None = None) -> RunResult:
        """Ask for a script run (navigate to ``page``, set widgets, press buttons) and wait
        until it has finished (through any ``st.rerun``); returns what it sent.

        ``page`` is a url path or a page title (None: the page shown now, or the default
        page on the first run).
        """
        if self._ws is None:
            raise ProtocolError("not connected")
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = query_string
        if page is not None:
            cs.page_script_hash = self.page_hash_of(page) if self.pages else ""
            cs.page_name = page if not self.pages else ""
        else:
            cs.page_script_hash = self.page_hash
        for key, value in (set or {}).items():
            cs.widget_states.widgets.append(self.widget_state(key, value))
        for key in press:
            cs.widget_states.widgets.append(self.widget_state(key, trigger=True))
        while not self._inbox.empty():  # anything left from an earlier run is stale
            self._handle_stale(self._inbox.get_nowait()[1])
        res = RunResult()
        t0 = time.perf_counter()
        await self.send(msg)
        deadline = t0 + (self.timeout if timeout is None else timeout)
        while True:
            remaining = deadline - time.perf_counter()
            try:
                t, fm = await asyncio.wait_for(self._inbox.get(), max(remaining, 0.001))
            except TimeoutError:
                res.status = "timeout"
                res.errors.append(f"no script_finished within {deadline - t0:.0f} s")
                break
            if fm is None:
                res.status = "disconnected"
                res.errors.append(self.closed_reason or "disconnected")
                self._inbox.put_nowait((t, None))  # later runs see it too
                break
            if self._handle(fm, t - t0, res):
                break
        res.seconds = time.perf_counter() - t0
        self.last = res
        return res

    def _handle_stale(self, fm: ForwardMsg | None) -> None:
        if fm is None:
            self._inbox.put_nowait((time.perf_counter(), None))
        elif fm.WhichOneof("type") in ("navigation", "new_session"):
            self._handle(fm, 0.0, RunResult())

    def _handle(self, fm: ForwardMsg, t: float, res: RunResult) -> bool:
        """Fold one ForwardMsg into ``res``; True when the run is over."""
        kind = fm.WhichOneof("type")
        if kind == "new_session":  # sent at the start of every run
            ns = fm.new_session
            if ns.HasField("initialize"):
                self.session_id = ns.initialize.session_id
            self._learn_pages(ns.app_pages)
            self.page_hash = ns.page_script_hash
            res.elements.clear()
        elif kind == "navigation":
            self._learn_pages(fm.navigation.app_pages)
            self.page_hash = fm.navigation.page_script_hash or self.page_hash
            res.page = next((p.url_pathname for p in fm.navigation.app_pages
                             if p.page_script_hash == self.page_hash), res.page)
        elif kind == "delta":
            path = tuple(fm.metadata.delta_path)
            if res.first_delta is None:
                res.first_delta = t
            if res.first_main is None and path and path[0] == _MAIN:
                res.first_main = t
            if fm.delta.WhichOneof("type") == "new_element":
                el = fm.delta.new_element
                res.elements[path] = el
                ek = element_kind(el)
                key = widget_key(element_id(el))
                if key is not None and key not in res.arrived:
                    res.arrived[key] = t
                if ek == "exception":
                    ex = el.exception
                    res.exceptions.append(f"{ex.type}: {ex.message}")
                elif ek == "alert" and el.alert.format == Alert.ERROR:
                    res.errors.append(el.alert.body)
        elif kind == "page_not_found":
            res.errors.append(f"page not found: {fm.page_not_found.page_name!r}")
        elif kind == "session_event":
            ev = fm.session_event
            if ev.WhichOneof("type") == "script_compilation_exception":
                ex = ev.script_compilation_exception
                res.exceptions.append(f"{ex.type}: {ex.message}")
        elif kind == "script_finished":
            if fm.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                res.reruns += 1
                return False
            res.status = _FINISHED.get(fm.script_finished, "ok")
            return fm.script_finished != ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY
        return False

    def _learn_pages(self, app_pages) -> None:
        for p in app_pages:
            self.pages[p.url_pathname] = p.page_script_hash
            self.pages.setdefault(p.page_name, p.page_script_hash)
