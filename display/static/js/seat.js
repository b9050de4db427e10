// The virtual seat (/seat/<id>): each key is a POST to the server, which presses it through the
// simulator's press API, so the click travels the real Modbus path.  The LEDs are the simulated
// console's own registers (what the controller wrote), read back through /seat/<id>/state.
"use strict";

(() => {
  const SEAT = window.SEAT || {};
  const T = window.T || {};
  const $ = (id) => document.getElementById(id);
  const base = `/seat/${SEAT.id}`;
  let last = null;
  let busy = false;

  function message(text, bad) {
    const el = $("seat-msg");
    el.textContent = text || "";
    el.className = `seat-msg ${bad ? "bad" : ""}`;
  }

  async function post(action, body) {
    try {
      const resp = await fetch(`${base}/${action}`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": SEAT.csrf || "" },
        body: JSON.stringify(body),
        credentials: "same-origin",
      });
      let reply = {};
      try {
        reply = await resp.json();
      } catch (_) {
        reply = {};
      }
      if (!resp.ok || reply.error || reply.ok === false) {
        message(reply.message || reply.error || `HTTP ${resp.status}`, true);
        return false;
      }
      message("");
      return true;
    } catch (err) {
      message(T.offline || String(err), true);
      return false;
    } finally {
      poll();
    }
  }

  function render(st) {
    last = st;
    const leds = new Set(st.led_names || []);
    for (const el of document.querySelectorAll("[data-led]")) el.classList.toggle("on", leds.has(el.dataset.led));
    const ring = $("ring");
    ring.classList.toggle("on", leds.has("mic") || Boolean(st.mic));
    ring.classList.toggle("request", leds.has("request"));
    ring.classList.toggle("warn", leds.has("warn"));
    $("mic-word").textContent = st.mic ? T.mic_on : T.mic_off;
    $("lcd-text").textContent = st.text || (st.powered === false ? T.console_off : "");
    const mode = st.mode_name ? T[`mode_${st.mode_name}`] || st.mode_name : "";
    $("lcd-mode").textContent = mode;
    const hasCard = Boolean(st.card);
    $("btn-card").textContent = hasCard ? T.remove_card : T.insert_card;
    $("card-uid").textContent = hasCard ? String(st.card) : "";
    const present = Boolean(st.presence);
    $("btn-presence").setAttribute("aria-pressed", String(present));
    $("btn-presence").textContent = present ? T.release_sensor : T.hold_sensor;
    const box = $("proposal-keys");
    const n = st.mode_name === "vote_rating" ? Number(st.proposals || 0) : 0;
    if (box.dataset.n !== String(n)) {
      box.dataset.n = String(n);
      box.innerHTML = Array.from({ length: n }, (_, i) => `<button type="button" class="key k-p" data-key="p${i + 1}"><span class="led" data-pled="${i}"></span>${i + 1}</button>`).join("");
      box.hidden = n === 0;
    }
    for (const el of box.querySelectorAll("[data-pled]")) el.classList.toggle("on", Boolean((st.proposal_leds || 0) & (1 << Number(el.dataset.pled))));
  }

  async function poll() {
    if (busy) return;
    busy = true;
    try {
      const resp = await fetch(`${base}/state`, { credentials: "same-origin", cache: "no-store" });
      if (resp.status === 401) {
        window.location.href = `/login?next=${encodeURIComponent(window.location.pathname)}`;
        return;
      }
      const st = await resp.json();
      if (st && typeof st === "object" && !st.error) render(st);
      else if (st && st.error) message(st.error, true);
    } catch (_) {
      message(T.offline, true);
    } finally {
      busy = false;
    }
  }

  document.addEventListener("click", (e) => {
    const btn = e.target instanceof Element ? e.target.closest("button") : null;
    if (!btn) return;
    if (btn.dataset.key) {
      post("press", { key: btn.dataset.key });
    } else if (btn.dataset.action === "card") {
      post("card", last && last.card ? { uid: null } : {});
    } else if (btn.dataset.action === "presence") {
      post("presence", { present: !(last && last.presence) });
    }
  });

  // the seat's deputy is named by the server in the page itself (no fetch of the whole state for one name)
  poll();
  setInterval(() => {
    if (!document.hidden) poll();
  }, 400);
})();
