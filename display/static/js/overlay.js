// The stream overlay (/overlay): speaker lower third and vote-result banner, nothing else.
"use strict";

(() => {
  const { connectLive, esc, formatDuration, tr, speechDeadline, deputyName } = window.Live;
  const $ = (id) => document.getElementById(id);
  const lower = $("lower-third");
  const banner = $("result-banner");
  let live = null;

  function renderBanner(state) {
    const vote = state.vote;
    const result = state.phase === "result_shown" ? vote?.result || state.last_result : null;
    if (!result) {
      banner.hidden = true;
      return;
    }
    const same = vote && vote.number === result.number ? vote : null;
    const title = result.title || same?.title || "";
    const cls = result.cancelled ? "cancelled" : result.adopted ? "adopted" : "rejected";
    const word = result.cancelled ? tr("verdict_cancelled") : result.adopted ? tr("verdict_adopted") : tr("verdict_rejected");
    let counts;
    if (result.kind === "rating") {
      const proposals = same?.proposals || [];
      counts = result.counts
        .map((n, i) => `<span class="c">${esc(proposals[i] ?? tr("proposal_n", { n: i + 1 }))}: ${n}</span>`)
        .join("");
    } else {
      const c = result.counts || [0, 0, 0];
      counts = [
        ["yes", c[0]],
        ["no", c[1]],
        ["abstain", c[2]],
      ]
        .map(([o, n]) => `<span class="c"><span class="dot s-${o}"></span>${esc(tr(`count_${o}`))} ${n}</span>`)
        .join("");
      counts += `<span class="c muted-c">${esc(tr("count_did_not_vote"))} ${result.did_not_vote} · ${esc(tr("count_absent"))} ${result.absent}</span>`;
    }
    banner.className = `result-banner ${cls}`;
    banner.innerHTML = `<p class="rb-verdict">${esc(word)}</p><p class="rb-title">${esc(title)}</p><p class="rb-counts tabular-nums">${counts}</p>`;
    banner.hidden = false;
  }

  function render(state) {
    renderBanner(state);
    tick();
  }

  function tick() {
    const state = live?.state();
    const speech = state?.speakers?.speaking?.[0];
    if (!speech || !state.sitting?.open) {
      lower.hidden = true;
      return;
    }
    const dep = state.deputies?.[String(speech.deputy)];
    $("lt-name").textContent = dep ? dep.name : deputyName(state, speech.deputy) || tr("seat_n", { n: speech.seat });
    $("lt-sub").textContent = [dep?.faction, tr(`speech_${speech.kind}`)].filter(Boolean).join(" · ");
    const now = live.now();
    const deadline = speechDeadline(speech);
    const left = deadline === null ? null : deadline - now;
    $("lt-timer").textContent = left === null ? formatDuration(now - speech.start_ms) : left >= 0 ? formatDuration(left) : `+${formatDuration(-left)}`;
    lower.className = `lower-third ${left === null ? "" : left < 0 ? "over" : left <= 30_000 ? "warn" : ""}`;
    lower.hidden = false;
  }

  function fit() {
    document.getElementById("overlay").style.setProperty("--scale", String(Math.min(window.innerWidth / 1920, window.innerHeight / 1080)));
  }

  fit();
  window.addEventListener("resize", fit);
  live = connectLive("/hall", render);
  setInterval(tick, 200);
  void esc;
})();
