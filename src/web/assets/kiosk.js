// facegate kiosk: shows the screen the service sends (/kiosk/live). A welcome or a refusal
// stays up for a few seconds; the prompt that came meanwhile is shown after it.
"use strict";

const HOLD_MS = 4000;
const prompt = document.getElementById("prompt");
let holdUntil = 0;
let pending = null;

function paint(screen) {
  document.body.setAttribute("data-state", screen.state);
  document.body.setAttribute("data-since", String(Date.now()));
  prompt.textContent = screen.text;
}

function show(screen) {
  const verdict = screen.state === "welcome" || screen.state === "denied";
  if (!verdict && screen.state !== "open" && Date.now() < holdUntil) {
    pending = screen;
    return;
  }
  if (verdict) {
    holdUntil = Date.now() + HOLD_MS;
    pending = null;
    setTimeout(() => { if (pending && Date.now() >= holdUntil) paint(pending); }, HOLD_MS + 50);
  }
  paint(screen);
}

const stream = new EventSource("/kiosk/live");
stream.addEventListener("screen", (message) => show(JSON.parse(message.data)));
stream.addEventListener("error", () => paint({ state: "idle", text: "Reconnecting…" }));
