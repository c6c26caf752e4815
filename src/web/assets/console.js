// facegate console: confirmations and the live activity view. No inline script anywhere
// (the Content-Security-Policy forbids it); text from the door is set with textContent only.
"use strict";

document.addEventListener("submit", (event) => {
  const question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});

function describe(e) {
  switch (e.kind) {
    case "attempt": return e.reason;
    case "unlocked": return "unlocked (" + e.origin + ") for " + e.for_ms + " ms";
    case "locked": return "locked";
    case "contact": return e.open ? "door opened" : "door closed";
    case "alarm": return "alarm: " + e.alarm;
    case "camera": return e.up ? "camera up" : "camera down";
    case "backend": return e.online ? "backend online" : "backend offline";
    default: return e.kind;
  }
}

const live = document.querySelector("#live tbody");
if (live) {
  const stream = new EventSource("/activity/live");
  stream.addEventListener("door", (message) => {
    const e = JSON.parse(message.data);
    const row = document.createElement("tr");
    if (e.kind === "attempt" && e.outcome && e.outcome.granted) row.className = "granted";
    for (const text of [e.time, e.kind, e.user || "", describe(e)]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.appendChild(cell);
    }
    live.prepend(row);
    while (live.rows.length > 50) live.deleteRow(-1);
  });
}
