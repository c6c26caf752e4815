// The web console and the kiosk in a real browser (Debian's chromium, driven by
// playwright-core), against a running `facegate run` with the replay camera. Started by
// tests/web.rs, which sets the environment below, made the accounts and checks the relay after.
// Prints one JSON line of measurements last; any failed check throws (exit 1).
import { createRequire } from "node:module";
import { readFileSync, mkdirSync } from "node:fs";
import assert from "node:assert/strict";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const require = createRequire(env("WEB_E2E_NODE_MODULES") + "/");
const { chromium } = require("playwright-core");

const base = env("WEB_URL");
const shots = env("WEB_SHOTS");
const audit = env("WEB_AUDIT");
const password = env("WEB_PASSWORD");
mkdirSync(shots, { recursive: true });
const shot = (page, name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
const step = (what) => console.log(`web-e2e: ${what}`);

const browser = await chromium.launch({
  executablePath: process.env.WEB_CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const results = {};
try {
  // Every page must keep its scripts to the files the console serves: no dialog may open
  // (the hostile name below), no console error (a CSP violation shows as one).
  const watch = (page) => {
    page.on("dialog", (d) => { throw new Error(`a dialog opened: ${d.message()}`); });
    page.on("pageerror", (e) => { throw new Error(`page error: ${e.message}`); });
  };

  // The kiosk from the start: the replay shows a person nobody has enrolled yet.
  const kioskContext = await browser.newContext({ viewport: { width: 1024, height: 600 } });
  const kiosk = await kioskContext.newPage();
  watch(kiosk);
  const kioskStates = new Map();
  await kiosk.goto(`${base}/kiosk`);
  let watching = true;
  const kioskWatcher = (async () => {
    while (watching) {
      const [state, since, text] = await kiosk
        .evaluate(() => [document.body.dataset.state, Number(document.body.dataset.since),
          document.getElementById("prompt").textContent])
        .catch(() => [null, 0, ""]);
      if (state && !kioskStates.has(state)) {
        kioskStates.set(state, { at: since || Date.now(), text });
        await shot(kiosk, `kiosk-${state}`);
        step(`kiosk shows ${state}: ${text}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();

  const admin = await (await browser.newContext()).newPage();
  watch(admin);
  const signIn = async (page, account, secret) => {
    await page.goto(`${base}/login`);
    await page.fill("input[name=account]", account);
    await page.fill("input[name=password]", secret);
    await page.click("button[type=submit]");
  };

  // Security headers on every page.
  const response = await admin.goto(`${base}/login`);
  const headers = response.headers();
  assert.match(headers["content-security-policy"], /script-src 'self'/);
  assert.equal(headers["x-frame-options"], "DENY");
  await shot(admin, "console-login");
  // A page behind the sign-in sends you to it.
  await admin.goto(`${base}/people`);
  assert.ok(admin.url().endsWith("/login"), admin.url());

  step("five wrong passwords lock an account");
  for (let n = 1; n <= 5; n++) {
    await signIn(admin, "locky", `wrong password ${n}`);
    assert.match(await admin.textContent("main"), /Wrong account or password/);
  }
  await signIn(admin, "locky", password);
  assert.match(await admin.textContent("main"), /locked/);
  await shot(admin, "console-locked");

  step("sign in as admin");
  await signIn(admin, "admin", password);
  assert.ok(admin.url().endsWith("/people"), admin.url());
  const cookies = await admin.context().cookies();
  const session = cookies.find((c) => c.name === "facegate_session");
  assert.ok(session.httpOnly && session.sameSite === "Strict", JSON.stringify(session));

  step("a form without its CSRF token is refused");
  const forged = await admin.request.post(`${base}/door/unlock`, { form: {} });
  assert.equal(forged.status(), 403);
  assert.match(await forged.text(), /CSRF/);
  const wrong = await admin.request.post(`${base}/people/delete`, { form: { csrf: "x", user: "a@b.c" } });
  assert.equal(wrong.status(), 403);

  step("a refused upload is said in words");
  await admin.fill("#enroll input[name=user]", "nobody@example.com");
  await admin.fill("#enroll input[name=name]", "Nobody");
  await admin.setInputFiles("#enroll input[name=photos]", { name: "x.jpg", mimeType: "image/jpeg", buffer: Buffer.from("not a photo") });
  await admin.click("#enroll button[type=submit]");
  const refusal = await admin.textContent(".notice.bad");
  assert.match(refusal, /Not enrolled/);
  step(`  refusal: ${refusal}`);
  await shot(admin, "console-people-refused");

  step("a hostile name is shown as text");
  const hostile = "<img src=x onerror=alert(1)>";
  await admin.fill("#enroll input[name=user]", "mallory@example.com");
  await admin.fill("#enroll input[name=name]", hostile);
  await admin.setInputFiles("#enroll input[name=photos]", env("WEB_PHOTO_OTHER"));
  await admin.click("#enroll button[type=submit]");
  assert.match(await admin.textContent(".notice.ok"), /Enrolled/);
  const names = await admin.$$eval("#people td.name", (cells) => cells.map((c) => c.textContent));
  assert.ok(names.includes(hostile), JSON.stringify(names));
  assert.equal(await admin.$$eval("#people img", (imgs) => imgs.length), 0);

  step("add a group, then remove it");
  const mallory = "#people tr:has-text('mallory@example.com')";
  await admin.fill(`${mallory} input[name=group]`, "night");
  await admin.click(`${mallory} button[value=add]`);
  assert.match(await admin.textContent(".notice.ok"), /groups: night, staff/);
  await admin.fill(`${mallory} input[name=group]`, "night");
  await admin.click(`${mallory} button[value=remove]`);
  assert.match(await admin.textContent(".notice.ok"), /groups: staff\./);
  await admin.fill(`${mallory} input[name=group]`, "bad group!");
  await admin.click(`${mallory} button[value=add]`);
  step(`  refused: ${await admin.textContent(".notice.bad")}`);

  step("enroll Ana by upload");
  await admin.fill("#enroll input[name=user]", "ana@example.com");
  await admin.fill("#enroll input[name=name]", "Ana Lima");
  await admin.setInputFiles("#enroll input[name=photos]", env("WEB_PHOTO"));
  await admin.click("#enroll button[type=submit]");
  const enrolled = await admin.textContent(".notice.ok");
  assert.match(enrolled, /Enrolled Ana Lima/);
  step(`  ${enrolled}`);
  await shot(admin, "console-people");

  step("watch Ana be granted in the live activity view");
  await admin.goto(`${base}/activity`);
  await admin.waitForSelector("#live tr.granted", { timeout: 60_000 });
  const liveRow = await admin.textContent("#live tr.granted");
  assert.match(liveRow, /ana@example\.com/);
  for (let waited = 0; !kioskStates.has("welcome"); waited += 50) {
    assert.ok(waited < 10_000, "the kiosk never said welcome");
    await new Promise((r) => setTimeout(r, 50));
  }
  const { at: welcomedAt, text: welcome } = kioskStates.get("welcome");
  assert.equal(welcome, "Welcome, Ana");
  await shot(admin, "console-activity-live");

  step("export CSV");
  await admin.reload();
  const [download] = await Promise.all([admin.waitForEvent("download"), admin.click("#export-csv")]);
  const csv = readFileSync(await download.path(), "utf8");
  assert.match(csv, /^seq,time_utc,kind,door,user,granted/);
  assert.match(csv, /attempt,front,ana@example\.com,true,verified/);
  await shot(admin, "console-activity");

  step("disable Ana: the door stops admitting her");
  await admin.goto(`${base}/people?q=ana`);
  await admin.click("#people tr:has-text('ana@example.com') button:has-text('Disable')");
  assert.match(await admin.textContent(".notice.ok"), /Ana Lima is now disabled/);
  await shot(admin, "console-people-disabled");

  step("remote unlock, audited with the account");
  // A grant from just before Ana was disabled may still hold the door for unlock_ms.
  for (let waited = 0; ; waited += 500) {
    await admin.goto(`${base}/door`);
    if ((await admin.textContent("#lock")) === "locked") break;
    assert.ok(waited < 10_000, "the door never locked again");
    await new Promise((r) => setTimeout(r, 500));
  }
  await shot(admin, "console-door");
  await admin.click("text=Unlock for");
  assert.match(await admin.textContent(".notice.ok"), /audited as web:admin/);
  assert.equal(await admin.textContent("#lock"), "unlocked");
  await shot(admin, "console-door-unlocked");
  await admin.click("text=Lock now");
  assert.equal(await admin.textContent("#lock"), "locked");
  await admin.goto(`${base}/health`);
  await shot(admin, "console-health");

  step("a viewer cannot change anything");
  const viewer = await (await browser.newContext()).newPage();
  watch(viewer);
  await signIn(viewer, "viewer", password);
  assert.equal(await viewer.$$eval("#enroll, td.actions", (e) => e.length), 0);
  await viewer.goto(`${base}/door`);
  assert.equal(await viewer.$$eval("form[action='/door/unlock']", (e) => e.length), 0);
  const csrf = await viewer.getAttribute("nav input[name=csrf]", "value");
  const tried = await viewer.request.post(`${base}/door/unlock`, { form: { csrf } });
  assert.equal(tried.status(), 403);
  assert.match(await tried.text(), /Viewers can look/);
  const deleted = await viewer.request.post(`${base}/people/delete`, { form: { csrf, user: "ana@example.com" } });
  assert.equal(deleted.status(), 403);
  await shot(viewer, "console-door-viewer");

  step("console page load on loopback");
  const loads = [];
  for (let n = 0; n < 15; n++) {
    const started = Date.now();
    await admin.goto(`${base}/people`, { waitUntil: "load" });
    loads.push(Date.now() - started);
  }
  loads.sort((a, b) => a - b);
  results.console_page_load_median_ms = loads[Math.floor(loads.length / 2)];

  // The grant's time as the audit recorded it (before the relay moved) to the kiosk's welcome.
  const granted = readFileSync(audit, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l))
    .find((e) => e.kind === "attempt" && e.granted && e.user === "ana@example.com");
  results.grant_to_kiosk_welcome_ms = welcomedAt - granted.time_ms;
  results.kiosk_states = [...kioskStates.keys()];
  watching = false;
  await kioskWatcher;
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
