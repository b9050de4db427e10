// Live state for the pages: one Socket.IO namespace, a `state` event, then RFC 7396 merge patches.
// docs/web-protocol.md is the contract.  Plain ES2020, no build step.
"use strict";

/** RFC 7396 JSON merge patch: returns the patched value (target is changed in place when it can be). */
function mergePatch(target, patch) {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) {
    return patch;
  }
  if (target === null || typeof target !== "object" || Array.isArray(target)) {
    target = {};
  }
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete target[key];
    } else {
      target[key] = mergePatch(target[key], value);
    }
  }
  return target;
}

/**
 * Connect to a namespace and keep its state (`auth`: the connection's Socket.IO auth, e.g. the
 * console's {csrf, lang}).  `onState(state)` is called after every `state` and
 * every applied patch.  A patch whose `rev` is not the next one asks for `resync`.
 * Returns {socket, state(), now(), connected()}.  `now()` is the engine's clock (clock_ms) advanced
 * by this page's monotonic clock since the clock_ms was last seen.
 */
function connectLive(namespace, onState, onConnection, auth) {
  let state = null;
  let rev = null;
  let clockMs = null;
  let clockAt = 0;
  let connected = false;
  // eslint-disable-next-line no-undef
  const options = { reconnectionDelayMax: 5000 };
  if (auth) options.auth = auth;
  const socket = io(namespace, options);

  function noteClock() {
    if (state && typeof state.clock_ms === "number" && state.clock_ms !== clockMs) {
      clockMs = state.clock_ms;
      clockAt = performance.now();
    }
  }
  function setConnected(value) {
    connected = value;
    document.documentElement.dataset.connected = value ? "yes" : "no";
    if (onConnection) onConnection(value);
  }

  socket.on("connect", () => setConnected(true));
  socket.on("disconnect", () => setConnected(false));
  socket.on("connect_error", (err) => {
    setConnected(false);
    // a refused /console connection (logged out, session expired): the log-in page
    const why = `${err?.message ?? ""} ${JSON.stringify(err?.data ?? "")}`;
    if (why.includes("not_logged_in")) {
      window.location.href = `/login?next=${encodeURIComponent(window.location.pathname)}`;
    }
  });
  socket.on("state", (full) => {
    state = full;
    rev = typeof full.rev === "number" ? full.rev : null;
    noteClock();
    onState(state);
  });
  socket.on("patch", (patch) => {
    if (state === null) return; // the state is on its way
    const patchRev = patch && typeof patch.rev === "number" ? patch.rev : null;
    if (patchRev !== null && rev !== null) {
      if (patchRev <= rev) return; // already applied
      if (patchRev !== rev + 1) {
        socket.emit("resync");
        return;
      }
    }
    state = mergePatch(state, patch);
    if (patchRev !== null) rev = patchRev;
    noteClock();
    onState(state);
  });
  return {
    socket,
    state: () => state,
    now: () => (clockMs === null ? Date.now() : clockMs + (performance.now() - clockAt)),
    connected: () => connected,
  };
}

// ---------------------------------------------------------------------------- small helpers

/** Escape text for innerHTML. */
function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** m:ss (or h:mm:ss) of a non-negative number of milliseconds, rounded up to whole seconds. */
function formatDuration(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** HH:MM:SS of the engine's wall clock, in the browser's time zone. */
function formatClock(ms, withSeconds = true) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, "0");
  return withSeconds ? `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}` : `${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** A string from window.T with {name} placeholders filled. */
function tr(key, values) {
  const T = window.T || {};
  let text = T[key] ?? key;
  if (values) {
    for (const [k, v] of Object.entries(values)) text = text.split(`{${k}}`).join(String(v));
  }
  return text;
}

/** A string said of one deputy (a state's ``deputies`` entry): a woman's form, key + "_f" («Утрималася»,
 * «Відсутня»), where she has one; display/i18n.py lists them. */
function trOf(key, deputy, values) {
  const T = window.T || {};
  const own = deputy && deputy.gender === "f" && T[`${key}_f`] !== undefined;
  return tr(own ? `${key}_f` : key, values);
}

/** The speech's own deadline (ms) or null when it has no limit. */
function speechDeadline(speech) {
  if (typeof speech.end_ms === "number") return speech.end_ms;
  if (speech.limit_s) return speech.start_ms + speech.limit_s * 1000;
  return null;
}

/** The deputy's display name: short form where space is tight. */
function deputyName(state, id, short = false) {
  const d = state && state.deputies ? state.deputies[String(id)] : null;
  if (!d) return id === null || id === undefined ? "" : `№ ${id}`;
  return short ? d.short || d.name : d.name;
}

/** The vote's threshold in words, in the page's language. */
function thresholdWords(threshold) {
  if (!threshold) return "";
  const lang = document.documentElement.lang;
  return (lang === "en" ? threshold.words_en : threshold.words_uk) || threshold.words_uk || "";
}

/** The agenda item with this number, or null. */
function agendaItem(state, number) {
  if (!state || !state.agenda || number === null || number === undefined) return null;
  return state.agenda.find((item) => item.number === number) || null;
}

window.Live = { mergePatch, connectLive, esc, formatDuration, formatClock, tr, trOf, speechDeadline, deputyName, thresholdWords, agendaItem };
