// The secretary console (/console): every command goes out as the engine's journal JSON form through
// the `command` event; the ack's reply says whether it was taken.  The server is the judge: buttons
// are disabled only where chamber/core/phases.py would refuse the command anyway.
"use strict";

(() => {
  const { connectLive, esc, formatDuration, formatClock, tr, speechDeadline, deputyName, thresholdWords } = window.Live;
  const CONF = window.CONSOLE || {};
  const $ = (id) => document.getElementById(id);

  // --- what each phase accepts (chamber/core/phases.py TRANSITIONS) and each role may send (display/commands.py)
  const QUEUE = ["RequestFloor", "WithdrawRequest", "RevokeFloor", "ExtendSpeech", "ChairPriority"];
  const FLOOR = [...QUEUE, "GrantFloor", "NextSpeaker"];
  const AGENDA = ["SetAgenda", "SetCurrentItem", "ImportAgenda"];
  const PHASE_ALLOWS = {
    no_sitting: ["OpenSitting"],
    idle: [...FLOOR, ...AGENDA, "OpenRegistration", "OpenVote", "CloseSitting"],
    registration: [...FLOOR, ...AGENDA, "RegisterDeputy", "CloseRegistration"],
    vote_open: [...QUEUE, "CloseVote", "CancelVote"],
    vote_closed: [...FLOOR, ...AGENDA, "AnnounceResult", "CancelVote"],
    result_shown: [...FLOOR, ...AGENDA, "ClearResult", "OpenVote", "OpenRegistration", "CloseSitting"],
  };
  const ALWAYS = ["AcknowledgeAlert"];
  const ROLE_ALLOWS = {
    secretary: null, // everything
    chair: null,
    operator: [...FLOOR, "AcknowledgeAlert"],
    observer: [],
  };

  let live = null;
  let pending = 0;
  let selectedSeat = null;
  let micMap = null;
  let replyTimer = null;
  const log = [];

  function state() {
    return live ? live.state() : null;
  }
  function role() {
    return state()?.console?.user?.role || CONF.user?.role || "observer";
  }
  function phaseAllows(cmd) {
    const s = state();
    if (!s) return false;
    if (ALWAYS.includes(cmd)) return true;
    return (PHASE_ALLOWS[s.phase] || []).includes(cmd);
  }
  function roleAllows(cmd) {
    const allowed = ROLE_ALLOWS[role()];
    return allowed === null || allowed === undefined ? role() in ROLE_ALLOWS : allowed.includes(cmd);
  }

  // ------------------------------------------------------------------------------------ sending

  function showReply(ok, text) {
    const box = $("c-reply");
    clearTimeout(replyTimer);
    box.className = `c-reply ${ok ? "ok" : "refused"}`;
    box.innerHTML = ok
      ? `<span>${esc(text)}</span>`
      : `<strong>${esc(tr("refused"))}</strong> <span class="c-reply-msg">${esc(text)}</span><button type="button" class="c-btn small secondary" id="c-reply-close">${esc(tr("close"))}</button>`;
    box.hidden = false;
    if (ok) {
      replyTimer = setTimeout(() => {
        box.hidden = true;
      }, 4000);
    } else {
      $("c-reply-close").addEventListener("click", () => {
        box.hidden = true;
      });
    }
  }

  function addLog(cmd, reply) {
    const when = formatClock(live ? live.now() : Date.now());
    log.unshift({ when, what: tr(`cmd_${cmd.type}`), ok: reply.ok, message: reply.message || "" });
    log.length = Math.min(log.length, 12);
    $("command-log").innerHTML = log
      .map((e) => `<li class="${e.ok ? "ok" : "refused"}"><span class="tabular-nums">${esc(e.when)}</span> ${esc(e.what)} — ${esc(e.ok ? tr("done") : e.message)}</li>`)
      .join("");
  }

  /** A random id for one command: the server applies a command with an id it saw once only
   *  (display/command_ids.py).  getRandomValues, not randomUUID: the console may be served over plain
   *  HTTP on the hall's network, where randomUUID does not exist. */
  function commandId() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** Send one command; resolves with the reply ({ok} or {ok: false, reason, message}). */
  function send(cmd) {
    return new Promise((resolve) => {
      if (!live || !live.connected()) {
        const reply = { ok: false, reason: "offline", message: tr("offline") };
        showReply(false, reply.message);
        addLog(cmd, reply);
        resolve(reply);
        return;
      }
      pending += 1;
      updateButtons();
      live.socket.timeout(10000).emit("command", { ...cmd, command_id: commandId() }, (err, reply) => {
        pending -= 1;
        if (err) reply = { ok: false, reason: "timeout", message: tr("no_answer") };
        if (!reply || typeof reply !== "object") reply = { ok: false, reason: "bad_reply", message: tr("no_answer") };
        if (reply.ok) showReply(true, `${tr("done")}: ${tr(`cmd_${cmd.type}`)}`);
        else showReply(false, reply.message || reply.reason || tr("refused"));
        addLog(cmd, reply);
        updateButtons();
        resolve(reply);
      });
    });
  }

  // ------------------------------------------------------------------------------------ buttons

  function updateButtons() {
    const connected = live && live.connected();
    for (const el of document.querySelectorAll("[data-cmd]")) {
      const cmd = el.dataset.cmd;
      let off = !connected || pending > 0 || !phaseAllows(cmd);
      if (el.dataset.needs === "result") off = off || !finishedVote();
      el.disabled = off;
      const mine = roleAllows(cmd);
      el.classList.toggle("not-my-role", !mine);
      if (!mine) el.title = tr("not_your_role");
      else el.removeAttribute("title");
    }
    const note = $("c-role-note");
    const r = role();
    if (r === "observer" || r === "operator") {
      note.textContent = tr(`role_note_${r}`);
      note.hidden = false;
    } else {
      note.hidden = true;
    }
  }

  function finishedVote() {
    const s = state();
    return s?.vote?.result || s?.last_result || null;
  }

  // ------------------------------------------------------------------------------------ selects

  function deputyOptions(s) {
    return Object.entries(s.deputies || {})
      .map(([id, d]) => ({ id, label: `${d.name}${d.seat ? ` — ${tr("seat_n", { n: d.seat })}` : ""}`, name: d.name }))
      .sort((a, b) => a.name.localeCompare(b.name, CONF.lang === "en" ? "en" : "uk"));
  }

  function fillSelect(select, options, key, placeholder) {
    if (select.dataset.key === key) return;
    const keep = select.value;
    select.innerHTML =
      (placeholder ? `<option value="">${esc(placeholder)}</option>` : "") +
      options.map((o) => `<option value="${esc(o.id)}">${esc(o.label)}</option>`).join("");
    if ([...select.options].some((o) => o.value === keep)) select.value = keep;
    select.dataset.key = key;
  }

  function renderSelects(s) {
    const deps = deputyOptions(s);
    const depKey = deps.map((d) => d.id).join(",");
    for (const sel of document.querySelectorAll(".deputy-select")) fillSelect(sel, deps, depKey, tr("choose_deputy"));
    const seats = Object.entries(s.seats || {}).map(([id, seat]) => {
      const d = seat.deputy !== null && seat.deputy !== undefined ? s.deputies?.[String(seat.deputy)] : null;
      return { id, label: d ? `${d.name} — ${tr("seat_n", { n: id })}` : tr("seat_n", { n: id }), name: d ? d.name : `~${id.padStart(4, "0")}` };
    });
    seats.sort((a, b) => a.name.localeCompare(b.name, CONF.lang === "en" ? "en" : "uk"));
    const seatKey = seats.map((x) => `${x.id}:${x.label}`).join(",");
    for (const sel of document.querySelectorAll(".seat-select")) fillSelect(sel, seats, seatKey, tr("choose_deputy"));
    const items = (s.agenda || []).map((i) => ({ id: i.number, label: `${i.number}. ${i.title}` }));
    const itemKey = `${items.map((i) => i.label).join("|")}#${s.current_item ?? ""}`;
    const itemSel = $("vote-item");
    const wasKey = itemSel.dataset.key;
    fillSelect(itemSel, items, itemKey, tr("current_item_default"));
    if (wasKey !== itemKey && !itemSel.dataset.touched) itemSel.value = "";
  }

  // ------------------------------------------------------------------------------------ sections

  function renderHeader(s) {
    const phase = tr(`phase_${s.phase}`);
    const sit = s.sitting || {};
    $("c-phase").textContent = sit.open ? `${tr("sitting_n_cap", { n: sit.number })} · ${phase}` : phase;
    $("c-phase").dataset.phase = s.phase;
    if (s.council?.name) $("c-council").textContent = s.council.name;
    const u = s.console?.user;
    if (u) $("c-user").textContent = `${u.name} · ${tr(`role_${u.role}`)}`;
  }

  function renderSitting(s) {
    const open = Boolean(s.sitting?.open);
    $("sitting-open-view").hidden = !open;
    $("form-open-sitting").hidden = open;
    if (open) {
      $("sitting-desc").textContent = [tr("sitting_n_cap", { n: s.sitting.number }), s.sitting.title].filter(Boolean).join(" · ");
    }
    const reg = s.registration || {};
    $("reg-count").textContent = reg.registered ?? 0;
    $("reg-composition").textContent = reg.composition ?? s.council?.composition ?? "—";
    $("reg-needed").textContent = tr("quorum_needs", { n: reg.needed ?? "—" }) + (reg.open ? ` · ${tr("registration_open")}` : "");
    const q = $("reg-quorum");
    q.textContent = reg.quorum ? tr("quorum_yes") : tr("quorum_no");
    q.className = `c-quorum ${reg.quorum ? "yes" : "no"}`;
  }

  function renderAgenda(s) {
    const list = $("agenda-list");
    const items = s.agenda || [];
    list.innerHTML = items.length
      ? items
          .map((i) => {
            const current = i.number === s.current_item;
            return `<li class="${current ? "current" : ""}"><span class="a-no">${esc(i.number)}.</span> <span class="a-title">${esc(i.title)}</span>${i.draft ? ` <span class="muted">${esc(tr("draft_n", { n: i.draft }))}</span>` : ""}
              ${current ? `<span class="badge current-badge">${esc(tr("current"))}</span>` : `<button type="button" class="c-btn small secondary" data-cmd="SetCurrentItem" data-item="${esc(i.number)}">${esc(tr("make_current"))}</button>`}</li>`;
          })
          .join("")
      : `<li class="muted empty">${esc(tr("agenda_empty"))}</li>`;
  }

  function countsLine(counts, kind, proposals) {
    if (!counts) return "";
    if (kind === "rating") return counts.map((n, i) => `${esc(proposals?.[i] ?? tr("proposal_n", { n: i + 1 }))}: <b>${n}</b>`).join(" · ");
    return ["yes", "no", "abstain"].map((o, i) => `<span class="dot s-${o}"></span>${esc(tr(`count_${o}`))} <b>${counts[i] ?? 0}</b>`).join(" &nbsp; ");
  }

  function resultBlock(result) {
    const cls = result.cancelled ? "cancelled" : result.adopted ? "adopted" : "rejected";
    const word = result.cancelled ? tr("verdict_cancelled") : result.adopted ? tr("verdict_adopted") : tr("verdict_rejected");
    return `<p class="c-verdict ${cls}">${esc(word)}</p>
      <p class="c-counts tabular-nums">${countsLine(result.counts, result.kind, result.proposals)} &nbsp; ${esc(tr("count_did_not_vote"))} <b>${result.did_not_vote}</b> &nbsp; ${esc(tr("count_absent"))} <b>${result.absent}</b></p>
      ${result.cancelled ? `<p class="muted">${esc(tr("cancel_reason"))}: ${esc(result.cancelled)}</p>` : ""}`;
  }

  function renderVote(s) {
    const box = $("vote-status");
    const vote = s.vote;
    const reg = s.registration || {};
    if (vote) {
      const head = `<p class="eyebrow">${esc(tr(`kind_${vote.kind}`))} · ${esc(tr(`subject_${vote.subject}`))} · ${esc(tr("vote_number", { n: vote.number }))}</p>
        <p class="c-vote-title">${esc(vote.title || "")}</p>
        <p class="muted">${esc(tr("threshold_needs", { words: thresholdWords(vote.threshold), n: vote.threshold?.required ?? "—" }))}</p>`;
      if (vote.open) {
        box.innerHTML = `${head}
          <div class="c-vote-live">
            <p class="c-countdown tabular-nums" id="c-countdown"></p>
            <p class="c-cast"><b class="tabular-nums">${vote.cast}</b> ${esc(tr("cast_of", { n: reg.registered ?? "—" }))}</p>
          </div>
          ${vote.counts ? `<p class="c-counts tabular-nums">${countsLine(vote.counts, vote.kind, vote.proposals)}</p>` : vote.kind === "secret" ? `<p class="muted">${esc(tr("counts_hidden"))}</p>` : ""}`;
      } else {
        box.innerHTML = `${head}
          <p class="c-state-line">${esc(s.phase === "result_shown" ? tr("result_on_screen") : tr("result_not_announced"))}</p>
          ${vote.result ? resultBlock(vote.result) : `<p class="muted">${esc(tr("counting"))}</p>`}`;
      }
    } else if (s.last_result) {
      const r = s.last_result;
      box.innerHTML = `<p class="eyebrow">${esc(tr("last_vote"))} · ${esc(tr("vote_number", { n: r.number }))}</p>
        <p class="c-vote-title">${esc(r.title || "")}</p>${resultBlock(r)}`;
    } else {
      box.innerHTML = `<p class="muted">${esc(tr("no_vote_yet"))}</p>`;
    }
    const nv = $("not-voted");
    const ids = s.console?.not_voted || [];
    if (vote && vote.open) {
      nv.innerHTML = `<h3>${esc(tr("not_voted_yet"))} <span class="badge">${ids.length}</span></h3>${
        ids.length ? `<ul class="c-names">${ids.map((id) => `<li>${esc(deputyName(s, id, true))}</li>`).join("")}</ul>` : `<p class="muted">${esc(tr("all_voted"))}</p>`
      }`;
    } else {
      nv.innerHTML = "";
    }
  }

  function speechTimerText(speech, now) {
    const deadline = speechDeadline(speech);
    if (deadline === null) return { text: formatDuration(now - speech.start_ms), cls: "" };
    const left = deadline - now;
    return { text: left >= 0 ? formatDuration(left) : `+${formatDuration(-left)}`, cls: left < 0 ? "over" : left <= 30000 ? "warn" : "" };
  }

  function renderSpeakers(s) {
    const sp = s.speakers || { speaking: [], queue: [] };
    const speaking = sp.speaking || [];
    $("speaking-now").innerHTML = speaking.length
      ? speaking
          .map(
            (x) => `<div class="c-speech" data-seat="${x.seat}">
            <p><span class="eyebrow">${esc(tr("speaking_now"))} · ${esc(tr(`speech_${x.kind}`))}</span></p>
            <p class="c-speaker-name">${esc(deputyName(s, x.deputy) || tr("seat_n", { n: x.seat }))} <span class="muted">${esc(tr("seat_n", { n: x.seat }))}</span></p>
            <p class="c-speech-timer tabular-nums" data-timer="${x.seat}"></p>
            <div class="c-actions">
              <button type="button" class="c-btn small" data-cmd="ExtendSpeech" data-seat="${x.seat}" data-extra="60">${esc(tr("plus_1_min"))}</button>
              <button type="button" class="c-btn small" data-cmd="ExtendSpeech" data-seat="${x.seat}" data-extra="180">${esc(tr("plus_3_min"))}</button>
              <button type="button" class="c-btn small danger" data-cmd="RevokeFloor" data-seat="${x.seat}">${esc(tr("revoke"))}</button>
            </div></div>`,
          )
          .join("")
      : `<p class="muted">${esc(tr("nobody_speaking"))}</p>`;
    $("queue-stats").textContent = `· ${tr("spoken")} ${sp.spoken_on_item ?? 0} · ${tr("waiting")} ${sp.waiting ?? (sp.queue || []).length}`;
    const queue = sp.queue || [];
    $("queue-list").innerHTML = queue.length
      ? queue
          .map(
            (q) => `<li><span class="q-name">${esc(deputyName(s, q.deputy) || tr("seat_n", { n: q.seat }))}</span>
            <span class="badge kind-${esc(q.kind)}">${esc(tr(`speech_${q.kind}`))}</span>
            <span class="c-actions inline">
              <button type="button" class="c-btn small" data-cmd="GrantFloor" data-seat="${q.seat}" data-kind="${esc(q.kind)}">${esc(tr("grant"))}</button>
              <button type="button" class="c-btn small secondary" data-cmd="WithdrawRequest" data-seat="${q.seat}">${esc(tr("withdraw"))}</button>
            </span></li>`,
          )
          .join("")
      : `<li class="muted empty">${esc(tr("queue_empty"))}</li>`;
  }

  function micClass(seat, health) {
    if (seat.speaking) return "s-speaking";
    if (seat.queued) return "s-queued";
    if (!seat.online || (health && health.online === false)) return "s-offline";
    return seat.present || (seat.deputy !== null && seat.deputy !== undefined) ? "s-present" : "s-absent";
  }

  function renderMics(s) {
    const speaking = (s.speakers?.speaking || []).length;
    const max = s.console?.max_open_mics;
    $("mics-open").textContent = `· ${tr("mics_open", { n: speaking, max: max ?? "—" })}`;
    if (!micMap) micMap = new window.SeatMap($("mic-map"), { orientation: "chair", labels: true, onClick: selectSeat, title: tr("seat_map") });
    const healthAll = s.console?.seat_health || {};
    micMap.render(
      s.seats || {},
      (id, seat) => {
        const who = seat.deputy !== null && seat.deputy !== undefined ? deputyName(s, seat.deputy, true) : "";
        return { cls: micClass(seat, healthAll[id]), label: `${tr("seat_n", { n: id })}${who ? ` — ${who}` : ""}` };
      },
      selectedSeat,
    );
    renderSeatPanel(s);
  }

  function selectSeat(id) {
    selectedSeat = id;
    const s = state();
    if (s) renderMics(s);
    updateButtons();
  }

  function yesNo(value) {
    return value ? tr("yes_word") : tr("no_word");
  }

  function renderSeatPanel(s) {
    const panel = $("seat-panel");
    if (selectedSeat === null || !s.seats?.[selectedSeat]) {
      panel.innerHTML = `<p class="muted">${esc(tr("pick_seat"))}</p>`;
      return;
    }
    const seat = s.seats[selectedSeat];
    const h = s.console?.seat_health?.[selectedSeat] || {};
    const d = seat.deputy !== null && seat.deputy !== undefined ? s.deputies?.[String(seat.deputy)] : null;
    const errors = Object.entries(h.errors || {}).filter(([, n]) => n).map(([k, n]) => `${k}: ${n}`).join(", ");
    panel.innerHTML = `<h3>${esc(tr("seat_n", { n: selectedSeat }))}${seat.chair ? ` · ${esc(tr("chair_seat"))}` : ""}</h3>
      <p class="c-seat-who">${d ? `${esc(d.name)}<br><span class="muted">${esc(d.faction || "")}</span>` : `<span class="muted">${esc(tr("no_deputy"))}</span>`}</p>
      <dl class="c-dl">
        <dt>${esc(tr("h_online"))}</dt><dd class="${seat.online ? "" : "bad"}">${esc(yesNo(seat.online))}</dd>
        <dt>${esc(tr("h_card"))}</dt><dd>${esc(yesNo(h.card))}</dd>
        <dt>${esc(tr("h_presence"))}</dt><dd>${esc(yesNo(seat.present))}</dd>
        <dt>${esc(tr("h_mic"))}</dt><dd class="${h.mic_ok === false ? "bad" : ""}">${esc(h.mic_ok === false ? tr("mic_unit_down") : tr("ok_word"))}</dd>
        <dt>${esc(tr("mic_state"))}</dt><dd>${esc(seat.speaking ? tr("mic_on") : seat.queued ? tr("legend_queued") : tr("mic_off"))}</dd>
        ${errors ? `<dt>${esc(tr("h_errors"))}</dt><dd class="bad">${esc(errors)}</dd>` : ""}
      </dl>
      <div class="c-actions">
        <button type="button" class="c-btn" data-cmd="GrantFloor" data-seat="${selectedSeat}">${esc(tr("grant"))}</button>
        <button type="button" class="c-btn danger" data-cmd="RevokeFloor" data-seat="${selectedSeat}">${esc(tr("mic_off_action"))}</button>
        <button type="button" class="c-btn secondary" data-cmd="RequestFloor" data-seat="${selectedSeat}">${esc(tr("add_to_queue"))}</button>
        <button type="button" class="c-btn secondary" data-cmd="WithdrawRequest" data-seat="${selectedSeat}">${esc(tr("withdraw"))}</button>
      </div>
      ${CONF.simulator || s.console?.simulator ? `<p><a href="/seat/${esc(selectedSeat)}" target="_blank" rel="noopener">${esc(tr("open_virtual_seat"))}</a></p>` : ""}`;
  }

  function problem(h) {
    return !h.online || h.mic_ok === false || (h.rejected || 0) > 0 || Object.values(h.errors || {}).some((n) => n);
  }

  function renderHealth(s) {
    const health = s.console?.seat_health || {};
    const ids = Object.keys(health).sort((a, b) => Number(a) - Number(b));
    const all = $("health-all").checked;
    const online = ids.filter((id) => health[id].online).length;
    const cards = ids.filter((id) => health[id].card).length;
    const bad = ids.filter((id) => problem(health[id]));
    $("health-summary").innerHTML = `${esc(tr("online_of", { n: online, total: ids.length }))} · ${esc(tr("with_card", { n: cards }))} · <b class="${bad.length ? "bad" : ""}">${esc(tr("with_problems", { n: bad.length }))}</b>`;
    const rows = (all ? ids : bad).map((id) => {
      const h = health[id];
      const seat = s.seats?.[id] || {};
      const errs = Object.entries(h.errors || {}).filter(([, n]) => n).map(([k, n]) => `${k}: ${n}`).join(", ");
      const mark = (ok) => `<td class="${ok ? "good" : "bad"}">${esc(ok ? tr("ok_word") : tr("no_word"))}</td>`;
      return `<tr class="${problem(h) ? "problem" : ""}"><th scope="row"><button type="button" class="linkish" data-pick-seat="${id}">${id}</button></th>
        <td>${esc(seat.deputy !== null && seat.deputy !== undefined ? deputyName(s, seat.deputy, true) : "—")}</td>
        ${mark(h.online)}<td>${esc(yesNo(h.card))}</td><td>${esc(yesNo(h.present))}</td>${mark(h.mic_ok !== false)}
        <td class="num ${h.rejected ? "bad" : ""}">${h.rejected || 0}</td><td class="${errs ? "bad" : ""}">${esc(errs || "—")}</td></tr>`;
    });
    $("health-rows").innerHTML = rows.length ? rows.join("") : `<tr><td colspan="8" class="muted">${esc(tr("no_problems"))}</td></tr>`;
    const lines = s.console?.lines || {};
    const lineRows = Object.entries(lines).map(([id, l]) => {
      const errs = Object.entries(l.errors || {}).map(([k, n]) => `${k}: ${n}`).join(", ");
      return `<tr><th scope="row">${esc(id)}</th><td class="num tabular-nums">${l.cycles ?? "—"}</td><td>${esc(errs || "—")}</td></tr>`;
    });
    $("line-rows").innerHTML = lineRows.length ? lineRows.join("") : `<tr><td colspan="3" class="muted">${esc(tr("no_lines"))}</td></tr>`;
  }

  function renderAlerts(s) {
    const alerts = [...(s.console?.alerts || [])];
    alerts.sort((a, b) => Number(a.acknowledged) - Number(b.acknowledged) || b.at_ms - a.at_ms);
    const open = alerts.filter((a) => !a.acknowledged).length;
    const badge = $("alerts-count");
    badge.hidden = open === 0;
    badge.textContent = String(open);
    $("alerts-list").innerHTML = alerts.length
      ? alerts
          .map((a) => {
            const where = [a.seat ? tr("seat_n", { n: a.seat }) : "", a.deputy ? deputyName(s, a.deputy, true) : ""].filter(Boolean).join(", ");
            const kind = window.T[`alert_${a.kind}`] || tr("alert_other", { kind: a.kind }); // a kind this page has no words for yet
            // the server's sentence in the page's language; the engine's English detail only from a server without one
            const detail = (document.documentElement.lang === "en" ? a.detail_en : a.detail_uk) || a.detail;
            return `<li class="${a.acknowledged ? "acked" : "open"}"><span class="tabular-nums">${esc(formatClock(a.at_ms))}</span>
              <b>${esc(kind)}</b>${where ? ` · ${esc(where)}` : ""}${detail ? `<br><span class="a-detail">${esc(detail)}</span>` : ""}
              ${a.acknowledged ? `<span class="muted"> · ${esc(tr("acknowledged"))}</span>` : `<button type="button" class="c-btn small" data-cmd="AcknowledgeAlert" data-alert="${esc(a.id)}">${esc(tr("acknowledge"))}</button>`}</li>`;
          })
          .join("")
      : `<li class="muted empty">${esc(tr("no_alerts"))}</li>`;
  }

  /** The export panel's links: the sitting's files under /public/files (protocol_export.site_files). */
  function renderExports(s) {
    const uid = s.console?.sitting_uid;
    const last = s.vote?.result || s.last_result; // the last finished vote: its result sheet
    const base = uid ? `/public/files/${encodeURIComponent(uid)}` : null;
    const links = {
      protocol: base && `${base}/protocol.pdf`,
      sheet: base && last ? `${base}/vote-${last.number}.pdf` : null,
      votes_csv: base && `${base}/opendata/vote.csv`,
      popolo: base && `${base}/opendata/popolo.json`,
      sitting: uid ? `/public/sitting/${encodeURIComponent(uid)}#h-documents` : null,
    };
    for (const a of document.querySelectorAll("#exports [data-export]")) {
      const href = links[a.dataset.export];
      if (href) {
        a.href = href;
        a.removeAttribute("aria-disabled");
        a.classList.remove("disabled");
      } else {
        a.removeAttribute("href");
        a.setAttribute("aria-disabled", "true");
        a.classList.add("disabled");
      }
      if (a.dataset.export === "sheet") a.textContent = last ? tr("export_result_sheet_n", { n: last.number }) : tr("export_result_sheet");
    }
    $("exports-note").textContent = uid ? tr("exports_note") : tr("exports_none");
  }

  function render(s) {
    renderHeader(s);
    renderExports(s);
    renderSitting(s);
    renderAgenda(s);
    renderSelects(s);
    renderVote(s);
    renderSpeakers(s);
    renderMics(s);
    renderHealth(s);
    renderAlerts(s);
    updateButtons();
    tick();
  }

  function tick() {
    if (!live) return;
    const now = live.now();
    $("c-clock").textContent = formatClock(now);
    const s = state();
    if (!s) return;
    const cd = $("c-countdown");
    if (cd && s.vote) {
      cd.textContent = s.vote.deadline_ms === null || s.vote.deadline_ms === undefined ? formatDuration(now - s.vote.opened_at_ms) : formatDuration(s.vote.deadline_ms - now);
    }
    for (const speech of s.speakers?.speaking || []) {
      const el = document.querySelector(`[data-timer="${speech.seat}"]`);
      if (el) {
        const { text, cls } = speechTimerText(speech, now);
        el.textContent = text;
        el.className = `c-speech-timer tabular-nums ${cls}`;
      }
    }
  }

  // ------------------------------------------------------------------------------------ forms and clicks

  function formValue(form, name) {
    const el = form.elements.namedItem(name);
    return el ? String(el.value).trim() : "";
  }

  function voteCommand(form) {
    const kind = formValue(form, "kind");
    const cmd = { type: "OpenVote", kind, subject: formValue(form, "subject") };
    const s = state();
    const item = formValue(form, "item") || s?.current_item || null;
    if (item) cmd.item = item;
    let title = formValue(form, "title");
    if (!title && item) {
      const found = (s?.agenda || []).find((i) => i.number === item);
      if (found) title = `${found.title} (${tr(`subject_${cmd.subject}`)})`;
    }
    cmd.title = title;
    const duration = formValue(form, "duration_s");
    if (duration !== "") cmd.duration_s = Number(duration);
    if (!form.elements.namedItem("default_threshold").checked) {
      const m = /^(\d{1,4})\/(\d{1,4})$/.exec(formValue(form, "fraction"));
      cmd.threshold = {
        num: m ? Number(m[1]) : 0,
        den: m ? Number(m[2]) : 0,
        base: formValue(form, "base"),
        strict: formValue(form, "strict") === "true",
      };
    }
    if (kind === "rating") {
      cmd.proposals = formValue(form, "proposals")
        .split("\n")
        .map((p) => p.trim())
        .filter(Boolean);
    }
    if (kind === "secret") cmd.legal_basis = formValue(form, "legal_basis");
    const revote = formValue(form, "revote_of");
    if (revote) cmd.revote_of = Number(revote);
    return cmd;
  }

  function syncVoteForm() {
    const form = $("form-vote");
    const kind = formValue(form, "kind");
    for (const el of form.querySelectorAll("[data-for-kind]")) el.hidden = el.dataset.forKind !== kind;
    const byRules = form.elements.namedItem("default_threshold").checked;
    for (const name of ["strict", "fraction", "base"]) form.elements.namedItem(name).disabled = byRules;
    const revote = formValue(form, "revote_of");
    const note = $("revote-note");
    note.hidden = !revote;
    note.textContent = revote ? tr("revote_of", { n: revote }) : "";
  }

  function prefillRevote() {
    const r = finishedVote();
    if (!r) return;
    const form = $("form-vote");
    form.elements.namedItem("kind").value = r.kind;
    if (r.subject) form.elements.namedItem("subject").value = r.subject;
    form.elements.namedItem("title").value = r.title || "";
    if (r.item) {
      const sel = form.elements.namedItem("item");
      if ([...sel.options].some((o) => o.value === r.item)) sel.value = r.item;
    }
    if (r.threshold) {
      form.elements.namedItem("default_threshold").checked = false;
      form.elements.namedItem("fraction").value = `${r.threshold.num}/${r.threshold.den}`;
      form.elements.namedItem("base").value = r.threshold.base;
      form.elements.namedItem("strict").value = String(r.threshold.strict);
    }
    form.elements.namedItem("proposals").value = (r.proposals || []).join("\n");
    form.elements.namedItem("revote_of").value = String(r.number);
    syncVoteForm();
    form.scrollIntoView({ behavior: "smooth", block: "center" });
    $("btn-open-vote").focus();
  }

  function agendaRow(item) {
    return `<tr><td><input type="text" name="number" value="${esc(item.number)}" size="5" required aria-label="${esc(tr("item_number"))}"></td>
      <td><input type="text" name="title" value="${esc(item.title)}" required aria-label="${esc(tr("item_title"))}"></td>
      <td><input type="text" name="draft" value="${esc(item.draft || "")}" size="8" aria-label="${esc(tr("item_draft"))}"></td>
      <td><button type="button" class="c-btn small secondary" data-remove-row>${esc(tr("remove"))}</button></td></tr>`;
  }

  function loadAgendaRows() {
    const items = state()?.agenda || [];
    $("agenda-rows").innerHTML = (items.length ? items : [{ number: "1", title: "", draft: "" }]).map(agendaRow).join("");
  }

  function wire() {
    document.addEventListener("click", (e) => {
      const target = e.target instanceof Element ? e.target : null;
      const btn = target?.closest("button");
      if (!btn) return;
      if (btn.dataset.pickSeat) {
        selectSeat(btn.dataset.pickSeat);
        $("sec-mics").scrollIntoView({ behavior: "smooth" });
        return;
      }
      if (btn.hasAttribute("data-remove-row")) {
        btn.closest("tr").remove();
        return;
      }
      if (btn.type === "submit" || !btn.dataset.cmd) return;
      const cmd = btn.dataset.cmd;
      const seat = btn.dataset.seat ? Number(btn.dataset.seat) : null;
      switch (cmd) {
        case "CloseSitting":
          if (window.confirm(tr("confirm_close_sitting"))) send({ type: cmd });
          break;
        case "SetCurrentItem":
          send({ type: cmd, number: btn.dataset.item ?? null });
          break;
        case "ExtendSpeech":
          send({ type: cmd, seat, extra_s: Number(btn.dataset.extra) });
          break;
        case "GrantFloor": {
          const c = { type: cmd, seat };
          if (btn.dataset.kind) c.kind = btn.dataset.kind;
          send(c);
          break;
        }
        case "RevokeFloor":
        case "WithdrawRequest":
        case "RequestFloor":
          send({ type: cmd, seat });
          break;
        case "AcknowledgeAlert":
          send({ type: cmd, id: Number(btn.dataset.alert) });
          break;
        case "OpenVote":
          if (btn.id === "btn-revote") prefillRevote();
          break;
        default:
          send({ type: cmd });
      }
    });

    $("form-open-sitting").addEventListener("submit", (e) => {
      e.preventDefault();
      const f = e.currentTarget;
      send({ type: "OpenSitting", number: Number(formValue(f, "number")) || 1, title: formValue(f, "title") });
    });
    $("form-register").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = e.currentTarget;
      const reply = await send({ type: "RegisterDeputy", deputy: Number(formValue(f, "deputy")), reason: formValue(f, "reason") });
      if (reply.ok) f.elements.namedItem("reason").value = "";
    });
    $("form-cancel").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = e.currentTarget;
      const reply = await send({ type: "CancelVote", reason: formValue(f, "reason") });
      if (reply.ok) f.reset();
    });
    const voteForm = $("form-vote");
    voteForm.addEventListener("change", syncVoteForm);
    $("vote-item").addEventListener("change", (e) => {
      e.currentTarget.dataset.touched = "1";
    });
    voteForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      const reply = await send(voteCommand(voteForm));
      if (reply.ok) {
        voteForm.elements.namedItem("revote_of").value = "";
        voteForm.elements.namedItem("title").value = "";
        syncVoteForm();
      }
    });
    $("btn-vote-reset").addEventListener("click", () => {
      voteForm.reset();
      delete $("vote-item").dataset.touched;
      voteForm.elements.namedItem("revote_of").value = "";
      syncVoteForm();
    });
    $("form-floor").addEventListener("submit", (e) => {
      e.preventDefault();
      const f = e.currentTarget;
      const seat = Number(formValue(f, "seat"));
      const kind = formValue(f, "kind");
      const how = e.submitter ? e.submitter.value : "grant";
      if (how === "queue") {
        send({ type: "RequestFloor", seat, kind });
      } else {
        const cmd = { type: "GrantFloor", seat, kind };
        const minutes = formValue(f, "limit_min");
        if (minutes !== "") cmd.limit_s = Math.round(Number(minutes) * 60);
        send(cmd);
      }
    });
    $("agenda-edit").addEventListener("toggle", (e) => {
      if (e.currentTarget.open) loadAgendaRows();
    });
    $("agenda-add").addEventListener("click", () => {
      const rows = $("agenda-rows");
      rows.insertAdjacentHTML("beforeend", agendaRow({ number: String(rows.children.length + 1), title: "", draft: "" }));
      rows.lastElementChild.querySelector('input[name="title"]').focus();
    });
    $("form-agenda").addEventListener("submit", (e) => {
      e.preventDefault();
      const items = [...$("agenda-rows").querySelectorAll("tr")].map((tr_) => ({
        number: tr_.querySelector('[name="number"]').value.trim(),
        title: tr_.querySelector('[name="title"]').value.trim(),
        draft: tr_.querySelector('[name="draft"]').value.trim(),
      }));
      send({ type: "SetAgenda", items });
    });
    $("csv-file").addEventListener("change", async (e) => {
      const file = e.currentTarget.files?.[0];
      if (file) $("form-import").elements.namedItem("csv").value = await file.text();
    });
    $("form-import").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = e.currentTarget;
      const reply = await send({ type: "ImportAgenda", csv: f.elements.namedItem("csv").value });
      if (reply.ok) f.reset();
    });
    $("health-all").addEventListener("change", () => state() && renderHealth(state()));
    syncVoteForm();
  }

  wire();
  live = connectLive(
    "/console",
    render,
    (ok) => {
      $("c-offline").hidden = ok;
      updateButtons();
    },
    { csrf: CONF.csrf, lang: CONF.lang },
  );
  setInterval(tick, 250);
})();
