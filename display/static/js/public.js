// Public pages work without scripts; this only writes the local time into <time data-ms>.
"use strict";
for (const el of document.querySelectorAll("time.js-time[data-ms]")) {
  const d = new Date(Number(el.dataset.ms));
  if (!Number.isNaN(d.getTime())) {
    el.dateTime = d.toISOString();
    el.textContent = `· ${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  }
}
