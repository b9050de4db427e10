"""Plays one scripted sitting (chamber.recovery_plan) against the real controller, killing it where told.

How it works
------------
The driver is the secretary and the deputies.  The deputies press through the simulator's press API
(a console latches each press in its FIFO until a controller acknowledges it, so a press made while
the controller is dead is taken after the restart).  The secretary sends console commands over the
web console's Socket.IO namespace and reads the hall's state (``/api/state``), as a person at the
console does after a restart: every step is *make it so*, not *send once* (:meth:`SittingDriver.ensure`):

* read the state; if the step is done (the registration open, vote 2 exists, vote 2 closed, seat 17
  has the floor ...), go on;
* else send the command; an ``ok`` reply means the engine journaled and applied it, so wait for the
  state to show it (a publisher tick; through a crash, the journal's replay shows it);
* no reply (the controller died, or was restarting) leaves the step undecided: wait a publisher tick,
  read the state again and decide.  A command is never sent again while the state may still say it
  was not carried out only because it has not been published yet.

Before anything is closed, every press of the step must be taken: the consoles hold no
unacknowledged event (``/pending`` is 0) and the state counts what the script pressed (registered,
cast).  So the outcome is the script's, whatever the press timing and wherever the crashes fell.

Crash points (``kills``: name -> delays in seconds; a second delay counts from the first crash's
restart, so it falls while the new controller takes what was latched meanwhile): ``registration``
(into the registration's press window), ``vote:N`` (into vote N's press window), ``close:N`` (after
the console sent CloseVote for vote N: the command in flight, or being journaled), ``web`` (while
visitors load the hall and public pages and a hall socket is connected, during the speeches) and
``export`` (after a visitor asked for the sitting's protocol PDF, which the web app renders in its
worker process).  A kill runs on a thread of its own while the driver goes on; the step waits for
that crash's restart before it ends.  A sitting without kills may be run short (the baseline of a
run): no visitors, no PDF, since the journal does not depend on pages being read.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from chamber.core.values import Key
from chamber.recovery_plan import Plan, Press, VotePlan
from chamber.recovery_procs import Controller, SimApi, Unanswered, Web

STEP_TIMEOUT_S = 60.0
PUBLISH_TICK_S = 0.3  # more than the publisher's 100 ms cap: what the state may lag behind the engine

State = dict[str, Any]


@dataclass
class Crash:
    sitting: int
    point: str  # registration, vote, close, web, export
    at: str  # the kill's name, e.g. "close:2"
    delay_s: float
    restart_s: float = float("nan")  # SIGKILL -> every line polled by the new controller
    web_s: float = float("nan")  # SIGKILL -> the web server answers again
    resumed: bool = False  # the new controller's state shows the sitting open, where it was


@dataclass
class SittingReport:
    number: int
    uid: str = ""
    presses: Counter[int] = field(default_factory=Counter)  # seat -> presses the consoles latched
    dropped: int = 0  # presses a console did not latch (FIFO full)
    refusals: Counter[str] = field(default_factory=Counter)  # console commands refused, by reason
    crashes: list[Crash] = field(default_factory=list)
    pages: Counter[str] = field(default_factory=Counter)  # visitors' pages: served, unanswered, by status
    exports: int = 0  # protocol PDFs served after the sitting's export crash point
    unanswered: float = 0.0  # seconds the console commands waited for a reply that never came


class SittingDriver:
    def __init__(
        self,
        plan: Plan,
        number: int,
        sim: SimApi,
        web: Web,
        controller: Controller,
        kills: dict[str, list[float]],
        *,
        baseline_is_short: bool = False,
    ) -> None:
        self.plan, self.sim, self.web, self.controller = plan, sim, web, controller
        self.kills = kills
        # the journal does not depend on pages being read: a sitting without kills may leave out the
        # visitors and the PDF (to keep a short run short)
        self.short = baseline_is_short and not kills
        self.report = SittingReport(number)
        self._watchers: list[threading.Thread] = []

    # --- the sitting ---------------------------------------------------------------------------------

    def run(self) -> SittingReport:
        n, plan = self.report.number, self.plan
        self.ensure(
            {"type": "OpenSitting", "number": n, "title": f"Засідання {n}"},
            lambda s: bool(s["sitting"]["open"]) and s["sitting"]["number"] == n,
        )
        self.uid()
        self.wait(lambda s: _carded(s) >= plan.seats - len(plan.absent), "every card in")
        self.ensure({"type": "OpenRegistration"}, lambda s: s["phase"] == "registration")
        with self.armed("registration"):
            self.press(plan.registering)
            self.wait(lambda s: s["registration"]["registered"] >= len(plan.registering), "every deputy registered")
        self.ensure({"type": "CloseRegistration"}, lambda s: s["phase"] == "idle")
        for vote in plan.votes:
            self.vote(vote)
        self.speeches()
        if not self.short:
            self.export()
        self.ensure({"type": "CloseSitting"}, lambda s: not s["sitting"]["open"])
        for watcher in self._watchers:
            watcher.join(STEP_TIMEOUT_S)
        return self.report

    def vote(self, vote: VotePlan) -> None:
        k, cast = vote.number, len(vote.final_choices())
        self.ensure({"type": "OpenVote", "title": vote.title, "duration_s": 0}, lambda s: _vote_number(s) >= k)
        with self.armed(f"vote:{k}"):
            self.press(vote.presses)
            self.wait(lambda s: (s["vote"] or {}).get("cast") == cast, f"vote {k}: every choice taken")
        with self.armed(f"close:{k}"):
            self.ensure({"type": "CloseVote"}, lambda s: _vote_number(s) == k and not s["vote"]["open"])
        self.ensure({"type": "AnnounceResult"}, lambda s: s["phase"] == "result_shown")

    def speeches(self) -> None:
        with self.armed("web"), self.visitors(0 if self.short else 3):
            for seat in self.plan.speakers:  # one after another: the queue's order is the script's
                self.speak(seat)
            for seat in self.plan.speakers:
                self.give_floor(seat)
                time.sleep(0.2)  # the speech
            last = self.plan.speakers[-1]
            self.ensure({"type": "RevokeFloor", "seat": last}, lambda s: last not in _speaking(s))

    def speak(self, seat: int) -> None:
        self.press([Press(0.0, seat, Key.SPEAK)])
        self.wait(lambda s: seat in _queue(s), f"seat {seat} in the queue")

    def give_floor(self, seat: int) -> None:
        self.ensure({"type": "NextSpeaker"}, lambda s: seat in _speaking(s))

    def export(self) -> None:
        """A visitor asks for the protocol PDF (rendered by the web app's worker); a crash may cut it.
        After it the file must be served, made from the journal as it stands."""
        uid = self.uid()
        path = f"/public/files/{uid}/protocol.pdf"
        with self.armed("export"), contextlib.suppress(Unanswered):
            self.web.get(path, timeout=60)
        end = time.monotonic() + STEP_TIMEOUT_S
        while time.monotonic() < end:
            try:
                status, body = self.web.get(path, timeout=60)
            except Unanswered:
                time.sleep(0.1)
                continue
            if status == 200 and body.startswith(b"%PDF"):
                self.report.exports += 1
                return
            time.sleep(0.1)
        raise TimeoutError(f"sitting {self.report.number}: the protocol PDF was not served after the restart")

    def uid(self) -> str:
        if not self.report.uid:
            import re

            _, page = self.retry(lambda: self.web.get("/public"))
            found = re.findall(rb'/public/sitting/([0-9A-Za-z_-]+)"', page)
            if not found:
                raise RuntimeError("the public index lists no sitting")
            self.report.uid = found[0].decode()  # the newest first
        return self.report.uid

    # --- making it so ----------------------------------------------------------------------------------

    def ensure(self, command: dict[str, Any], done: Callable[[State], bool], timeout: float = STEP_TIMEOUT_S) -> State:
        """Make the state ``done`` with ``command``, sent only while the state says it is not carried out."""
        what = command["type"]
        end = time.monotonic() + timeout
        while True:
            state = self.wait(lambda _s: True, what, end - time.monotonic())
            if done(state):
                return state
            asked = time.monotonic()
            try:
                reply = self.web.command(command)
            except Unanswered:
                self.report.unanswered += time.monotonic() - asked
                time.sleep(PUBLISH_TICK_S)  # it may have been carried out: look again once that can show
                continue
            if reply.get("ok"):
                return self.wait(done, what, max(end - time.monotonic(), 10.0))
            self.report.refusals[str(reply.get("reason"))] += 1
            time.sleep(PUBLISH_TICK_S)
            if time.monotonic() > end:
                raise TimeoutError(f"sitting {self.report.number}: {what} refused: {reply}")

    def wait(self, done: Callable[[State], bool], what: str, timeout: float = STEP_TIMEOUT_S) -> State:
        """The state once ``done`` holds and no console holds an unacknowledged press (through crashes)."""
        end = time.monotonic() + timeout
        while True:
            try:
                state = self.web.state()
                if done(state) and self.sim.pending() == 0:
                    return state
            except Unanswered:
                pass
            if time.monotonic() > end:
                raise TimeoutError(f"sitting {self.report.number}: not reached within {timeout:.0f} s: {what}")
            time.sleep(0.05)

    def retry(self, fn: Callable[[], tuple[int, bytes]]) -> tuple[int, bytes]:
        end = time.monotonic() + STEP_TIMEOUT_S
        while True:
            try:
                status, body = fn()
                if status == 200:
                    return status, body
            except Unanswered:
                pass
            if time.monotonic() > end:
                raise TimeoutError("the web server did not answer")
            time.sleep(0.1)

    def press(self, presses: Sequence[Press]) -> None:
        """The deputies press, each at the moment the script gives (from now)."""
        t0 = time.monotonic()
        for p in presses:
            delay = t0 + p.offset_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if self.sim.press(p.seat, int(p.key)):
                self.report.presses[p.seat] += 1
            else:
                self.report.dropped += 1

    # --- crashes and visitors -----------------------------------------------------------------------

    @contextlib.contextmanager
    def armed(self, name: str) -> Iterator[None]:
        """Crash the controller at the delays ``kills[name]`` gives: the first counted from entering the
        step, each further one from the previous crash's restart (every line polled again)."""
        delays = self.kills.get(name, ())
        if not delays:
            yield
            return
        crashes = [Crash(self.report.number, name.split(":")[0], name, d) for d in delays]
        thread = threading.Thread(target=self._crashes, args=(crashes,), name=f"crash-{name}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            thread.join(STEP_TIMEOUT_S)
            self.report.crashes += crashes

    def _crashes(self, crashes: list[Crash]) -> None:
        for crash in crashes:
            time.sleep(crash.delay_s)
            t0 = time.monotonic()
            crash.restart_s = self.controller.crash()
            self._web_back(crash, t0)

    def _web_back(self, crash: Crash, t0: float) -> None:
        """In the background: when the web state answers again, and whether it shows the sitting."""

        def watch() -> None:
            end = t0 + STEP_TIMEOUT_S
            while time.monotonic() < end:
                try:
                    state = self.web.state()
                except Unanswered:
                    time.sleep(0.01)
                    continue
                crash.web_s = time.monotonic() - t0
                crash.resumed = bool(state["sitting"]["open"]) and state["sitting"]["number"] == self.report.number
                return

        watcher = threading.Thread(target=watch, name="crash-web", daemon=True)
        watcher.start()
        self._watchers.append(watcher)

    @contextlib.contextmanager
    def visitors(self, threads: int = 3) -> Iterator[None]:
        """Public visitors loading pages, one after another, on ``threads`` threads."""
        stop = threading.Event()
        if not threads:
            yield
            return
        uid = self.uid()
        paths = ["/hall", "/api/state", "/public", f"/public/sitting/{uid}", f"/public/vote/{uid}/1", "/overlay"]
        pages = self.report.pages

        def visit(i: int) -> None:
            while not stop.is_set():
                path = paths[i % len(paths)]
                i += 1
                try:
                    status, _ = self.web.get(path, timeout=10)
                    pages["served" if status == 200 else f"http_{status}"] += 1
                except Unanswered:
                    pages["unanswered"] += 1
                    time.sleep(0.05)

        workers = [threading.Thread(target=visit, args=(i,), daemon=True) for i in range(threads)]
        for w in workers:
            w.start()
        self.web.open_hall(pages)  # a hall screen's socket: it reconnects by itself after a crash
        try:
            yield
        finally:
            stop.set()
            self.web.close_hall()
            for w in workers:
                w.join(15)


def _vote_number(state: State) -> int:
    return int((state.get("vote") or {}).get("number") or 0)


def _queue(state: State) -> list[int]:
    return [int(r["seat"]) for r in state["speakers"]["queue"]]


def _speaking(state: State) -> list[int]:
    return [int(r["seat"]) for r in state["speakers"]["speaking"]]


def _carded(state: State) -> int:
    return sum(1 for seat in state["seats"].values() if seat.get("deputy") is not None)
