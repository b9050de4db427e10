// The hall screen (/hall): 1920x1080, read from the back of the hall.
"use strict";

(() => {
  const { connectLive, esc, formatDuration, formatClock, tr, trOf, speechDeadline, deputyName, thresholdWords, agendaItem } = window.Live;
  const PAGE_MS = 8000; // a page of the per-name list stays this long
  const $ = (id) => document.getElementById(id);
  const els = {
    screen: $("hall"),
    council: $("council-name"),
    sitting: $("sitting-title"),
    clock: $("clock"),
    item: $("item"),
    head: $("vote-head"),
    panel: $("panel"),
    side: $("side"),
    registered: $("registered"),
    quorum: $("quorum"),
    strip: $("speaker-strip"),
    speakerStats: $("speaker-stats"),
  };
  let seatMap = null;
  let namesPage = 0;
  let namesVote = null;
  let namesPages = 1;
  let lastView = "";
  let live = null;

  const OUTCOMES = ["yes", "no", "abstain", "did_not_vote", "absent"];

  /** Which view the main area shows. */
  function viewOf(state) {
    if (!state || !state.sitting || !state.sitting.open || state.phase === "no_sitting") return "no_sitting";
    const vote = state.vote;
    if (state.phase === "vote_open" && vote) return "vote";
    if (state.phase === "vote_closed" && vote) return "closed";
    if (state.phase === "result_shown" && (vote?.result || state.last_result)) return "result";
    if (state.speakers && state.speakers.speaking && state.speakers.speaking.length) return "speaker";
    if (state.phase === "registration") return "registration";
    return "idle";
  }

  function kindLine(vote) {
    const parts = [tr(`kind_${vote.kind}`)];
    if (vote.subject) parts.push(tr(`subject_${vote.subject}`));
    if (vote.number) parts.push(tr("vote_number", { n: vote.number }));
    return parts.join(" · ");
  }

  function seatOutcome(state, seat, result) {
    const dep = seat.deputy;
    if (result && result.per_name && dep !== null && result.per_name[String(dep)]) return result.per_name[String(dep)];
    if (seat.choice === "yes" || seat.choice === "no" || seat.choice === "abstain") return seat.choice;
    if (!seat.present) return "absent";
    return "did_not_vote";
  }

  /** seat id -> the deputy assigned to it in the config (a seat reports its deputy only while a card is in). */
  function assignedSeats(state) {
    const out = {};
    for (const [id, d] of Object.entries(state.deputies || {})) if (d.seat !== null && d.seat !== undefined) out[String(d.seat)] = id;
    return out;
  }

  function mapClassifier(state, view, result) {
    const assigned = assignedSeats(state);
    return (id, seatIn) => {
      const deputy = seatIn.deputy ?? assigned[id] ?? null;
      // a deputy is in the hall when their card is in the console (the presence sensor, where there is
      // one, counts too); an empty slot is an absent deputy
      const here = (seatIn.deputy !== null && seatIn.deputy !== undefined) || Boolean(seatIn.present);
      const seat = { ...seatIn, deputy, present: here };
      const who = deputy !== null ? deputyName(state, deputy, true) : "";
      const label = `${tr("seat_n", { n: id })}${who ? ` — ${who}` : ""}`;
      const person = deputy !== null ? state.deputies?.[String(deputy)] : null;
      const said = (key) => `${label}: ${trOf(key, person)}`; // «Відсутня» of a woman
      if (deputy === null && !seat.chair) return { cls: "s-empty", label };
      if (view === "result" && result && result.kind === "roll_call") {
        const outcome = seatOutcome(state, seat, result);
        return { cls: `s-${outcome}`, label: said(`one_${outcome}`) };
      }
      if (view === "vote" || view === "closed" || (view === "result" && result && result.kind !== "secret")) {
        if (!seat.present && !seat.voted) return { cls: "s-absent", label: said("one_absent") };
        return seat.voted ? { cls: "s-voted", label: said("legend_voted") } : { cls: "s-notvoted", label: said("legend_not_voted") };
      }
      if (seat.speaking) return { cls: "s-speaking", label: said("legend_speaking") };
      if (seat.queued) return { cls: "s-queued", label: said("legend_queued") };
      return seat.present ? { cls: "s-present", label: said("legend_present") } : { cls: "s-absent", label: said("one_absent") };
    };
  }

  function legend(view, result) {
    let items;
    if (view === "result" && result && result.kind === "roll_call") {
      items = OUTCOMES.map((o) => [o, tr(`count_${o}`)]);
    } else if (view === "result") {
      items = [["voted", tr("legend_took_part")], ["notvoted", tr("count_did_not_vote")], ["absent", tr("count_absent")]];
    } else if (view === "vote" || view === "closed") {
      items = [["voted", tr("legend_voted")], ["notvoted", tr("legend_not_voted")], ["absent", tr("count_absent")]];
    } else {
      items = [["present", tr("legend_present")], ["absent", tr("count_absent")], ["speaking", tr("legend_speaking")], ["queued", tr("legend_queued")]];
    }
    return `<ul class="legend">${items.map(([cls, text]) => `<li><span class="dot s-${cls}"></span>${esc(text)}</li>`).join("")}</ul>`;
  }

  function ensureMap(container) {
    if (!seatMap || !container.contains(seatMap.container)) {
      container.querySelectorAll(".seatmap").forEach((n) => n.remove());
      const holder = document.createElement("div");
      holder.className = "seatmap";
      container.prepend(holder);
      seatMap = new window.SeatMap(holder, { orientation: "hall", title: tr("seat_map") });
    }
    return seatMap;
  }

  // ------------------------------------------------------------------------------------ views

  function renderVote(state, closed) {
    const vote = state.vote;
    const reg = state.registration || {};
    els.panel.innerHTML = `
      <p class="eyebrow">${esc(kindLine(vote))}</p>
      <h2 class="vote-title">${esc(vote.title)}</h2>
      ${closed
        ? `<p class="big-status">${esc(tr("vote_closed_big"))}</p><p class="sub-status">${esc(tr("result_pending"))}</p>`
        : `<p class="countdown-label">${esc(vote.deadline_ms === null || vote.deadline_ms === undefined ? tr("vote_running") : tr("time_left"))}</p><p class="countdown tabular-nums" id="countdown"></p>`}
      <p class="cast"><span class="cast-n tabular-nums">${vote.cast}</span> ${esc(tr("cast_of", { n: reg.registered ?? "—" }))}</p>
      <p class="threshold">${esc(tr("threshold_needs", { words: thresholdWords(vote.threshold), n: vote.threshold?.required ?? "—" }))}</p>`;
  }

  /** A long title leaves less room: the countdown (down to 150 px), then the title (down to 34 px) are set
   *  smaller until the panel holds everything, the threshold line included.  Runs once the countdown has
   *  its text (an empty paragraph has no height to measure). */
  function fitPanel() {
    const panel = els.panel;
    const over = () => panel.scrollHeight > panel.clientHeight + 1;
    const shrink = (el, min, step) => {
      if (!el) return;
      let size = parseFloat(getComputedStyle(el).fontSize);
      while (over() && size > min) {
        size = Math.max(min, size - step);
        el.style.fontSize = `${size}px`;
      }
    };
    shrink(panel.querySelector(".countdown"), 150, 10);
    shrink(panel.querySelector(".big-status"), 50, 4);
    shrink(panel.querySelector(".vote-title"), 34, 2);
  }

  function countsTable(result, vote) {
    if (result.kind === "rating") {
      const proposals = vote?.proposals || [];
      const rows = result.counts.map((n, i) => {
        const win = result.winner === i + 1;
        return `<tr class="${win ? "winner" : ""}"><th scope="row">${esc(proposals[i] ?? tr("proposal_n", { n: i + 1 }))}${win ? ` <span class="win-mark">${esc(tr("winner"))}</span>` : ""}</th><td class="tabular-nums">${n}</td></tr>`;
      });
      rows.push(`<tr class="c-did_not_vote"><th scope="row">${esc(tr("count_did_not_vote"))}</th><td class="tabular-nums">${result.did_not_vote}</td></tr>`);
      rows.push(`<tr class="c-absent"><th scope="row">${esc(tr("count_absent"))}</th><td class="tabular-nums">${result.absent}</td></tr>`);
      return `<table class="counts rating"><tbody>${rows.join("")}</tbody></table>`;
    }
    const values = [...(result.counts || [0, 0, 0]), result.did_not_vote, result.absent];
    return `<table class="counts"><tbody>${OUTCOMES.map(
      (o, i) => `<tr class="c-${o}"><th scope="row"><span class="dot s-${o}"></span>${esc(tr(`count_${o}`))}</th><td class="tabular-nums">${values[i] ?? 0}</td></tr>`,
    ).join("")}</tbody></table>`;
  }

  function verdict(result) {
    if (result.cancelled) return `<p class="verdict cancelled">${esc(tr("verdict_cancelled"))}</p>`;
    return result.adopted
      ? `<p class="verdict adopted">${esc(tr("verdict_adopted"))}</p>`
      : `<p class="verdict rejected">${esc(tr("verdict_rejected"))}</p>`;
  }

  /** A result whose per-name list is public: roll-call, and rating (each name with the proposal chosen). */
  function named(result) {
    return Boolean(result && (result.kind === "roll_call" || result.kind === "rating") && Object.keys(result.per_name || {}).length);
  }

  /** The words for one deputy's outcome: a choice (in her or his grammatical gender), or a rating
   * vote's proposal ("p2"). */
  function outcomeWord(outcome, result, vote, person) {
    const m = /^p(\d+)$/.exec(outcome);
    if (!m) return trOf(`one_${outcome}`, person);
    const proposals = result.proposals || vote?.proposals || [];
    return proposals[Number(m[1]) - 1] || tr("proposal_n", { n: m[1] });
  }

  function resultOf(state) {
    const vote = state.vote;
    const result = vote?.result || state.last_result;
    const sameVote = vote && result && vote.number === result.number ? vote : null;
    return { result, vote: sameVote };
  }

  function renderResult(state) {
    const { result, vote } = resultOf(state);
    const title = result.title || vote?.title || "";
    const threshold = result.threshold || vote?.threshold;
    const item = result.item ?? vote?.item;
    const eyebrow = [item ? tr("item_n", { n: item }).replace(/\.$/, "") : "", kindLine({ ...vote, ...result, subject: result.subject || vote?.subject })]
      .filter(Boolean)
      .join(" · ");
    els.head.innerHTML = `<p class="eyebrow">${esc(eyebrow)}</p><h2 class="vote-title small">${esc(title)}</h2>`;
    els.panel.innerHTML = `
      ${verdict(result)}
      ${countsTable(result, vote)}
      <p class="threshold">${esc(tr("threshold_needs", { words: thresholdWords(threshold), n: result.required }))}</p>
      ${named(result) ? '<div class="panel-map"></div>' : ""}`;
  }

  function renderSpeaker(state) {
    const speech = state.speakers.speaking[0];
    const dep = state.deputies?.[String(speech.deputy)];
    const others = state.speakers.speaking.slice(1);
    els.panel.innerHTML = `
      <p class="eyebrow">${esc(tr("speaking_now"))} · ${esc(tr(`speech_${speech.kind}`))}</p>
      <h2 class="speaker-name">${esc(dep ? dep.name : tr("seat_n", { n: speech.seat }))}</h2>
      <p class="speaker-faction">${esc(dep?.faction || "")}</p>
      <p class="speaker-timer tabular-nums" id="speaker-timer"></p>
      <div class="timebar"><div class="timebar-fill" id="timebar"></div></div>
      ${others.length ? `<p class="also-speaking">${esc(tr("also_speaking"))}: ${others.map((s) => esc(deputyName(state, s.deputy, true))).join(", ")}</p>` : ""}`;
  }

  function renderRegistration(state, idle) {
    const reg = state.registration || {};
    const { result } = resultOf(state);
    let last = "";
    if (idle && result) {
      const c = result.counts || [];
      last = `<div class="last-result">
        <p class="eyebrow">${esc(tr("last_vote"))} ${result.title ? `· ${esc(result.title)}` : ""}</p>
        <p><span class="verdict-inline ${result.cancelled ? "cancelled" : result.adopted ? "adopted" : "rejected"}">${esc(
          result.cancelled ? tr("verdict_cancelled") : result.adopted ? tr("verdict_adopted") : tr("verdict_rejected"),
        )}</span>
        ${result.kind === "rating" ? "" : `<span class="inline-counts tabular-nums">${esc(tr("count_yes"))} ${c[0] ?? 0} · ${esc(tr("count_no"))} ${c[1] ?? 0} · ${esc(tr("count_abstain"))} ${c[2] ?? 0}</span>`}</p>
      </div>`;
    }
    els.panel.innerHTML = `
      <p class="eyebrow">${esc(idle ? tr("registration_state") : tr("registration_open"))}</p>
      <p class="reg-big tabular-nums"><span>${reg.registered ?? 0}</span><span class="reg-of">/ ${reg.composition ?? state.council?.composition ?? "—"}</span></p>
      <p class="reg-needed">${esc(tr("quorum_needs", { n: reg.needed ?? "—" }))}</p>
      <p class="quorum-big ${reg.quorum ? "yes" : "no"}">${esc(reg.quorum ? tr("quorum_yes") : tr("quorum_no"))}</p>
      ${last}`;
  }

  function renderNoSitting(state) {
    els.panel.innerHTML = `<p class="eyebrow">${esc(state?.council?.name || "")}</p>
      <p class="big-status">${esc(tr("no_sitting"))}</p>`;
  }

  // ------------------------------------------------------------------------------------ side

  function renderNames(state, result) {
    const entries = Object.entries(result.per_name || {}).map(([id, outcome]) => ({
      id,
      name: deputyName(state, id, true),
      person: state.deputies?.[String(id)],
      outcome,
    }));
    const lang = document.documentElement.lang === "en" ? "en" : "uk";
    entries.sort((a, b) => a.name.localeCompare(b.name, lang));
    if (namesVote !== result.number) {
      namesVote = result.number;
      namesPage = 0;
    }
    let box = els.side.querySelector(".names");
    if (!box) {
      els.side.insertAdjacentHTML(
        "beforeend",
        `<section class="names" aria-label="${esc(tr("per_name"))}"><header class="names-head"><h3>${esc(tr("per_name"))}</h3><p class="names-page tabular-nums" aria-live="off"></p></header><ol class="names-list"></ol></section>`,
      );
      box = els.side.querySelector(".names");
    }
    const list = box.querySelector(".names-list");
    const columns = 3;
    // one page if every name fits at a readable height, otherwise dense rows and pages that turn
    list.style.setProperty("--rows", 1);
    const height = list.clientHeight;
    const rowsNeeded = Math.max(1, Math.ceil(entries.length / columns));
    const fits = height / rowsNeeded >= 38;
    const rowHeight = fits ? Math.min(50, Math.floor(height / rowsNeeded)) : 37;
    const rows = fits ? rowsNeeded : Math.max(1, Math.floor(height / rowHeight));
    const perPage = rows * columns;
    namesPages = Math.max(1, Math.ceil(entries.length / perPage));
    if (namesPage >= namesPages) namesPage = 0;
    list.style.setProperty("--row-h", `${rowHeight}px`);
    list.style.setProperty("--rows", rows);
    list.classList.toggle("dense", !fits);
    const page = entries.slice(namesPage * perPage, (namesPage + 1) * perPage);
    list.innerHTML = page
      .map((e) => {
        const cls = /^p\d+$/.test(e.outcome) ? `o-proposal ${result.winner !== null && e.outcome === `p${result.winner}` ? "o-winner" : ""}` : `o-${e.outcome}`;
        return `<li class="${cls}"><span class="n-name">${esc(e.name)}</span><span class="n-choice">${esc(outcomeWord(e.outcome, result, state.vote, e.person))}</span></li>`;
      })
      .join("");
    // a long name is set smaller rather than cut (down to a size still read from the back)
    for (const name of list.querySelectorAll(".n-name")) {
      let size = parseFloat(getComputedStyle(name).fontSize);
      while (name.scrollWidth > name.clientWidth && size > 22) {
        size -= 1;
        name.style.fontSize = `${size}px`;
      }
      // still too long (a double surname): the choice word gives way before the name is cut
      const choice = name.nextElementSibling;
      let small = choice ? parseFloat(getComputedStyle(choice).fontSize) : 0;
      while (choice && name.scrollWidth > name.clientWidth && small > 16) {
        small -= 1;
        choice.style.fontSize = `${small}px`;
      }
    }
    box.querySelector(".names-page").textContent = namesPages > 1 ? tr("page_of", { n: namesPage + 1, total: namesPages }) : "";
  }

  function renderQueue(state) {
    const sp = state.speakers || { queue: [] };
    const queue = sp.queue || [];
    const shown = queue.slice(0, 8);
    const rest = queue.length - shown.length;
    els.side.insertAdjacentHTML(
      "beforeend",
      `<section class="queue"><h3>${esc(tr("queue"))}</h3>${
        shown.length
          ? `<ol class="queue-list">${shown
              .map((q) => `<li><span class="q-name">${esc(deputyName(state, q.deputy))}</span>${q.kind !== "speech" ? `<span class="q-kind">${esc(tr(`speech_${q.kind}`))}</span>` : ""}</li>`)
              .join("")}</ol>${rest > 0 ? `<p class="queue-more">${esc(tr("and_more", { n: rest }))}</p>` : ""}`
          : `<p class="queue-empty">${esc(tr("queue_empty"))}</p>`
      }</section>`,
    );
  }

  function renderSide(state, view) {
    const { result } = resultOf(state);
    const showNames = view === "result" && named(result);
    const showQueue = view === "speaker";
    const layout = showNames ? "names" : showQueue ? "queue" : result && view === "result" && result.kind === "secret" ? "secret" : "map";
    if (els.side.dataset.layout !== layout) {
      els.side.dataset.layout = layout;
      els.side.innerHTML = "";
      seatMap = null;
    } else {
      els.side.querySelectorAll(".legend, .queue, .secret-note").forEach((n) => n.remove());
    }
    if (layout === "secret") {
      els.side.innerHTML = `<p class="secret-note">${esc(tr("secret_note"))}</p>`;
      return;
    }
    const mapHome = showNames ? els.panel.querySelector(".panel-map") : els.side;
    const map = ensureMap(mapHome);
    map.render(state.seats || {}, mapClassifier(state, view, view === "result" ? result : null));
    if (!showNames) map.container.insertAdjacentHTML("afterend", legend(view, view === "result" ? result : null));
    if (showNames) renderNames(state, result);
    if (showQueue) renderQueue(state);
  }

  // ------------------------------------------------------------------------------------ frame

  function sittingLine(s) {
    const number = s.number ? tr("sitting_n_cap", { n: s.number }) : "";
    return s.title ? `${s.title}${s.number ? ` (№ ${s.number})` : ""}` : number;
  }

  function renderFrame(state) {
    const reg = state.registration || {};
    els.council.textContent = state.council?.name || "";
    const s = state.sitting || {};
    els.sitting.textContent = s.open ? sittingLine(s) : "";
    const item = agendaItem(state, state.current_item);
    if (item) {
      els.item.innerHTML = `<span class="item-no">${esc(tr("item_n", { n: item.number }))}</span> <span class="item-title">${esc(item.title)}</span>${item.draft ? ` <span class="item-draft">${esc(tr("draft_n", { n: item.draft }))}</span>` : ""}`;
      els.item.hidden = false;
    } else {
      els.item.innerHTML = "";
      els.item.hidden = true;
    }
    els.registered.innerHTML = s.open
      ? `${esc(tr("registered"))} <b class="tabular-nums">${reg.registered ?? 0}</b> ${esc(tr("of"))} <b class="tabular-nums">${reg.composition ?? "—"}</b>`
      : "";
    els.quorum.hidden = !s.open;
    els.quorum.className = `quorum ${reg.quorum ? "yes" : "no"}`;
    els.quorum.textContent = reg.quorum ? tr("quorum_yes") : tr("quorum_no");
    const sp = state.speakers || {};
    els.speakerStats.innerHTML = s.open
      ? `${esc(tr("spoken"))} <b class="tabular-nums">${sp.spoken_on_item ?? 0}</b> · ${esc(tr("waiting"))} <b class="tabular-nums">${sp.waiting ?? (sp.queue || []).length}</b>`
      : "";
  }

  function render(state) {
    const view = viewOf(state);
    els.screen.dataset.view = view;
    const shown = view === "result" ? resultOf(state).result : null;
    els.screen.dataset.kind = shown ? shown.kind : "";
    els.screen.dataset.named = named(shown) ? "yes" : "no";
    if (view !== "result") els.head.innerHTML = "";
    renderFrame(state);
    if (view === "vote") renderVote(state, false);
    else if (view === "closed") renderVote(state, true);
    else if (view === "result") renderResult(state);
    else if (view === "speaker") renderSpeaker(state);
    else if (view === "registration") renderRegistration(state, false);
    else if (view === "idle") renderRegistration(state, true);
    else renderNoSitting(state);
    renderSide(state, view);
    lastView = view;
    tick();
    if (view === "vote" || view === "closed") fitPanel();
  }

  /** What moves by itself: the clock, the countdown, the speaker's timer. */
  function tick() {
    if (!live) return;
    const state = live.state();
    const now = live.now();
    els.clock.textContent = formatClock(now);
    if (!state) return;
    const countdown = document.getElementById("countdown");
    if (countdown && state.vote) {
      const vote = state.vote;
      if (vote.deadline_ms === null || vote.deadline_ms === undefined) {
        countdown.textContent = formatDuration(now - vote.opened_at_ms);
        countdown.classList.add("open-ended");
      } else {
        const left = vote.deadline_ms - now;
        countdown.textContent = formatDuration(left);
        countdown.classList.toggle("ending", left <= 10_000);
      }
    }
    const sp = state.speakers?.speaking || [];
    const timer = document.getElementById("speaker-timer");
    const strip = els.strip;
    if (sp.length) {
      const speech = sp[0];
      const deadline = speechDeadline(speech);
      const left = deadline === null ? null : deadline - now;
      const text = left === null ? formatDuration(now - speech.start_ms) : left >= 0 ? formatDuration(left) : `+${formatDuration(-left)}`;
      const cls = left === null ? "" : left < 0 ? "over" : left <= 30_000 ? "warn" : "";
      if (timer) {
        timer.textContent = text;
        timer.className = `speaker-timer tabular-nums ${cls}`;
        const bar = document.getElementById("timebar");
        if (bar && deadline !== null) {
          const total = Math.max(1, deadline - speech.start_ms);
          bar.style.width = `${Math.max(0, Math.min(100, (100 * left) / total))}%`;
          bar.className = `timebar-fill ${cls}`;
        }
      }
      if (lastView !== "speaker") {
        strip.hidden = false;
        strip.innerHTML = `<span class="strip-label">${esc(tr("speaking_now"))}</span> <span class="strip-name">${esc(deputyName(state, speech.deputy, true))}</span> <span class="strip-timer tabular-nums ${cls}">${esc(text)}</span>`;
      } else {
        strip.hidden = true;
      }
    } else {
      strip.hidden = true;
    }
  }

  function advancePage() {
    const state = live?.state();
    if (!state || namesPages <= 1 || lastView !== "result") return;
    namesPage = (namesPage + 1) % namesPages;
    const { result } = resultOf(state);
    if (result) renderNames(state, result);
  }

  /** The 1920x1080 canvas scaled to the window, centred (a 1280x720 projector shows it whole). */
  function fit() {
    const scale = Math.min(window.innerWidth / 1920, window.innerHeight / 1080);
    const style = els.screen.style;
    style.setProperty("--scale", String(scale));
    style.setProperty("--dx", `${(window.innerWidth - 1920 * scale) / 2}px`);
    style.setProperty("--dy", `${(window.innerHeight - 1080 * scale) / 2}px`);
  }

  fit();
  live = connectLive("/hall", render, (ok) => {
    document.getElementById("offline").hidden = ok;
  });
  setInterval(tick, 200);
  setInterval(advancePage, PAGE_MS);
  window.addEventListener("resize", fit);
  // names are fitted to their columns by measuring them: measure again once the font is in
  if (document.fonts) {
    document.fonts.addEventListener("loadingdone", () => live.state() && render(live.state()));
  }
})();
