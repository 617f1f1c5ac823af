// The dashboard in real headless Chromium, against a real camfleet process.
//
// Run by `cargo test --test browser`, which installs Chromium and playwright-core and sets
// CAMFLEET_BIN (the camfleet binary) and CAMFLEET_REPO (the repository).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import { chromium } from "playwright-core";

const BIN = process.env.CAMFLEET_BIN;
const REPO = process.env.CAMFLEET_REPO;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Whether something listens on `port` yet.
const listening = (port) =>
  new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1", () => s.end(() => resolve(true)));
    s.on("error", () => resolve(false));
  });

class Camfleet {
  constructor(configPath, port, scheme = "http") {
    this.configPath = configPath;
    this.port = port;
    this.scheme = scheme;
    this.url = `${scheme}://127.0.0.1:${port}`;
  }

  // `scheme` is "https" for a configuration that serves TLS.
  static async withConfig(yaml, scheme = "http") {
    const dir = mkdtempSync(join(tmpdir(), "camfleet-browser-"));
    const path = join(dir, "cameras.yaml");
    writeFileSync(path, yaml);
    const server = new Camfleet(path, await freePort(), scheme);
    await server.start();
    return server;
  }

  async start() {
    const stateDir = join(this.configPath, "..", "state");
    this.child = spawn(BIN, ["serve", "--config", this.configPath, "--listen", `127.0.0.1:${this.port}`, "--state-dir", stateDir], {
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, RUST_LOG: "warn" },
    });
    for (let i = 0; i < 200; i++) {
      try {
        if (this.scheme === "https" ? await listening(this.port) : (await fetch(`${this.url}/healthz`)).ok) return;
      } catch {}
      await sleep(50);
    }
    throw new Error("camfleet did not start");
  }

  async stop() {
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.kill("SIGTERM");
    await exited;
  }

  // `credentials` is NAME:PASSWORD on a server with accounts.
  async cameras(credentials) {
    const headers = credentials ? { Authorization: `Basic ${Buffer.from(credentials).toString("base64")}` } : {};
    return (await fetch(`${this.url}/api/cameras`, { headers })).json();
  }
}

let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});
after(async () => browser?.close());

async function open(server, viewport = { width: 1280, height: 800 }) {
  // A self-signed certificate is accepted as a user would after checking its fingerprint.
  const page = await browser.newPage({ viewport, ignoreHTTPSErrors: server.scheme === "https" });
  const errors = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(server.url);
  return { page, errors };
}

const seqs = (page) =>
  page.$$eval(".tile", (els) => Object.fromEntries(els.map((e) => [e.dataset.cameraId, Number(e.dataset.seq)])));

async function waitAllAdvance(page, ids, timeout = 10000) {
  const first = await seqs(page);
  await page.waitForFunction(
    ({ ids, first }) =>
      ids.every((id) => {
        const el = document.querySelector(`.tile[data-camera-id="${id}"]`);
        return el && Number(el.dataset.seq) > (first[id] ?? 0);
      }),
    { ids, first },
    { timeout },
  );
}

async function openControls(page, cameraId) {
  await page.click(`.tile[data-camera-id="${cameraId}"] .open-controls`);
  await page.waitForSelector('#panel:not([hidden]) .control[data-control="brightness"]');
}

test("the default fleet: a live tile per camera, no console errors", async () => {
  const server = await Camfleet.withConfig(
    (await import("node:fs")).readFileSync(join(REPO, "cameras.yaml"), "utf8"),
  );
  try {
    const { page, errors } = await open(server);
    const listed = (await server.cameras()).map((c) => c.camera_id);
    await page.waitForFunction((n) => document.querySelectorAll(".tile").length === n, listed.length);
    const shown = Object.keys(await seqs(page));
    assert.deepEqual(shown.sort(), [...listed].sort());
    await waitAllAdvance(page, listed);
    await waitAllAdvance(page, listed);
    const states = await page.$$eval(".tile", (els) => els.map((e) => e.dataset.state));
    assert.ok(states.every((s) => s === "Streaming"), states.join(","));
    if (process.env.SCREENSHOT) {
      await page.waitForFunction(() =>
        [...document.querySelectorAll(".tile .meta")].every((m) => !m.textContent.startsWith("0.0 fps")),
      );
      mkdirSync(join(REPO, "docs"), { recursive: true });
      await page.screenshot({ path: process.env.SCREENSHOT });
    }
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await server.stop();
  }
});

test("a host whose MQTT broker cannot be reached says so, and serves its cameras", async () => {
  // A port nothing listens on: the broker is away.
  const brokerPort = await freePort();
  const server = await Camfleet.withConfig(
    `mqtt: {url: "mqtt://127.0.0.1:${brokerPort}", host_id: bench}\n` +
      "cameras:\n  - id: desk\n    source: {kind: synthetic, width: 320, height: 240, fps: 10}\n",
  );
  try {
    const { page, errors } = await open(server);
    // Read every HOST_POLL_MS (5 s): the first read may still say "connecting".
    await page.waitForFunction(() => document.getElementById("broker").textContent.includes("cannot reach"));
    assert.equal(await page.getAttribute("#broker", "data-state"), "disconnected");
    const text = await page.textContent("#broker");
    assert.match(text, new RegExp(`cannot reach the MQTT broker 127\\.0\\.0\\.1:${brokerPort}`));
    await waitAllAdvance(page, ["desk"]);
    assert.deepEqual(errors, []);
  } finally {
    await server.stop();
  }
});

// A mosquitto of the test's own, on a free port.
async function startBroker() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "camfleet-broker-"));
  const conf = join(dir, "mosquitto.conf");
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\n`);
  const child = spawn("/usr/sbin/mosquitto", ["-c", conf], { stdio: "ignore" });
  for (let i = 0; i < 200 && !(await listening(port)); i++) await sleep(50);
  return { port, stop: () => child.kill() };
}

test("one dashboard over several hosts: another host's cameras, its live video, a control, offline", async () => {
  const broker = await startBroker();
  const host = (id) =>
    Camfleet.withConfig(
      `mqtt: {url: "mqtt://127.0.0.1:${broker.port}", host_id: ${id}, snapshot_interval: 1, snapshot_width: 160}\n` +
        `cameras:\n  - id: ${id}-cam\n    source: {kind: synthetic, width: 320, height: 240, fps: 10}\n`,
    );
  const [a, b] = [await host("alpha"), await host("beta")];
  let bStopped = false;
  try {
    const { page, errors } = await open(a);
    const remote = '.host[data-host="beta"] .remote-tile[data-camera-id="beta-cam"]';
    await page.waitForSelector(`${remote}[data-state="Streaming"]`);
    // Its thumbnail, from the broker's snapshot topic.
    await page.waitForFunction((sel) => document.querySelector(`${sel} img.thumbnail`).naturalWidth === 160, remote);
    // Live video straight from beta: beta counts this browser as an MJPEG viewer.
    await page.click(`${remote} .watch`);
    await page.waitForFunction((sel) => document.querySelector(`${sel} img.remote-live`).naturalWidth === 320, remote);
    const viewers = await (await fetch(`${b.url}/api/viewers`)).json();
    assert.ok(viewers.some((v) => v.camera === "beta-cam" && v.kind === "mjpeg"), JSON.stringify(viewers));
    // A control on beta, changed from alpha's page, over the broker.
    const row = `${remote} .row[data-control="brightness"]`;
    await page.fill(`${row} input`, "77");
    await page.click(`${row} button`);
    await page.waitForSelector(`${row} .result[data-state="applied"]`);
    const [beta] = await b.cameras();
    assert.equal(beta.controls.brightness, 77);
    await page.fill(`${row} input`, "999");
    await page.press(`${row} input`, "Enter");
    await page.waitForSelector(`${row} .result[data-state="error"]`);
    assert.match(await page.textContent(`${row} .result`), /0 to 255/);
    // beta goes away: alpha's page shows it offline, its camera greyed out, not removed.
    b.child.kill("SIGKILL");
    bStopped = true;
    await page.waitForSelector('.host[data-host="beta"][data-online="false"]', { timeout: 40000 });
    assert.equal(await page.locator(remote).count(), 1);
    assert.deepEqual(errors.filter((e) => !e.includes("ERR_")), []);
  } finally {
    await a.stop();
    if (!bStopped) await b.stop();
    broker.stop();
  }
});

test("controls: brightness reaches the server, a bad value shows the server's error", async () => {
  const server = await Camfleet.withConfig(
    "cameras:\n  - id: desk\n    name: Desk\n    source: {kind: synthetic, width: 320, height: 240, fps: 15}\n    controls: {brightness: 90}\n",
  );
  try {
    const { page, errors } = await open(server);
    await page.waitForSelector('.tile[data-camera-id="desk"][data-state="Streaming"]');
    await openControls(page, "desk");
    const row = '.control[data-control="brightness"]';
    await page.fill(`${row} input[type="number"]`, "200");
    await page.press(`${row} input[type="number"]`, "Enter");
    await page.waitForSelector(`${row} .result[data-state="applied"]`);
    assert.match(await page.textContent(`${row} .result`), /Applied: 200/);
    const desk = (await server.cameras()).find((c) => c.camera_id === "desk");
    assert.equal(desk.controls.brightness, 200);

    await page.fill(`${row} input[type="number"]`, "999");
    await page.press(`${row} input[type="number"]`, "Enter");
    await page.waitForSelector(`${row} .result[data-state="error"][data-code="OUT_OF_RANGE"]`);
    const message = await page.textContent(`${row} .result`);
    assert.match(message, /999/);
    assert.match(message, /from 0 to 255/);
    assert.equal((await server.cameras()).find((c) => c.camera_id === "desk").controls.brightness, 200);

    // Reset puts the camera back to cameras.yaml (brightness 90 there).
    await page.click("#panel-reset");
    await page.waitForFunction(() => document.getElementById("panel-note").textContent.includes("back to cameras.yaml"));
    await page.waitForFunction(
      () => document.querySelector('.control[data-control="brightness"] input[type="number"]')?.value === "90",
    );
    assert.equal((await server.cameras()).find((c) => c.camera_id === "desk").controls.brightness, 90);

    // Every kind of control the synthetic camera has is rendered with its widget.
    assert.ok(await page.$('.control[data-control="horizontal_flip"] input[type="checkbox"][role="switch"]'));
    assert.ok(await page.$('.control[data-control="test_pattern"] select'));
    assert.equal(await page.$$eval('.control[data-control="test_pattern"] option', (o) => o.length), 4);
    await page.selectOption('.control[data-control="test_pattern"] select', "2");
    await page.waitForSelector('.control[data-control="test_pattern"] .result[data-state="applied"]');
    // The link MQTT publishes for a camera, `/#camera=ID`, brings that camera to hand.
    const linked = await browser.newPage();
    await linked.goto(`${server.url}/#camera=desk`);
    await linked.waitForFunction(() => document.activeElement?.dataset.cameraId === "desk");
    await linked.close();
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await server.stop();
  }
});

test("usable from the keyboard, at phone width, with labels", async () => {
  const server = await Camfleet.withConfig(
    "cameras:\n  - id: a\n    source: {kind: synthetic, width: 320, height: 240, fps: 10}\n" +
      "  - id: b\n    capture: on_demand\n    source: {kind: synthetic, width: 320, height: 240, fps: 10}\n",
  );
  try {
    const { page, errors } = await open(server, { width: 390, height: 844 });
    await page.waitForSelector('.tile[data-camera-id="a"][data-state="Streaming"]');
    // The on-demand camera stays idle until someone asks to watch it.
    await page.waitForSelector('.tile[data-camera-id="b"][data-state="Idle"]');
    assert.match(await page.textContent('.tile[data-camera-id="b"] .state'), /on demand/);
    await page.click('.tile[data-camera-id="b"] .watch');
    await page.waitForSelector('.tile[data-camera-id="b"][data-state="Streaming"]');
    await waitAllAdvance(page, ["b"]);

    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than a phone`);
    await page.focus('.tile[data-camera-id="a"] .open-controls');
    await page.keyboard.press("Enter");
    await page.waitForSelector('#panel:not([hidden]) .control[data-control="brightness"]');
    const unlabeled = await page.$$eval("#panel input, #panel select", (els) =>
      els.filter((e) => !(e.labels?.length || e.getAttribute("aria-label"))).map((e) => e.outerHTML),
    );
    assert.deepEqual(unlabeled, []);
    await page.keyboard.press("Escape");
    await page.waitForSelector("#panel[hidden]", { state: "attached" });
    assert.equal(await page.evaluate(() => document.activeElement.className), "open-controls");
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await server.stop();
  }
});

// A password hash made the way a user makes one: `camfleet hash-password`, the password
// piped to its standard input.
function hashPassword(password) {
  return execFileSync(BIN, ["hash-password"], { input: `${password}\n` }).toString().trim();
}

test("accounts: sign in, see only your cameras, change as an operator, read only as a viewer, sign out", async () => {
  const server = await Camfleet.withConfig(
    "auth:\n  users:\n" +
      `    - {name: olga, role: operator, cameras: [a], password_hash: "${hashPassword("olga-password")}"}\n` +
      `    - {name: vic, role: viewer, password_hash: "${hashPassword("vic-password")}"}\n` +
      "cameras:\n" +
      "  - id: a\n    source: {kind: synthetic, width: 320, height: 240, fps: 10}\n" +
      "  - id: b\n    source: {kind: synthetic, width: 320, height: 240, fps: 10}\n",
  );
  const signIn = async (page, name, password) => {
    await page.waitForSelector("form.signin");
    await page.fill("#name", name);
    await page.fill("#password", password);
    await page.click("form.signin button[type=submit]");
  };
  try {
    const { page, errors } = await open(server);
    assert.match(page.url(), /\/login$/);
    await signIn(page, "olga", "olga-password");
    await page.waitForSelector('.tile[data-camera-id="a"][data-state="Streaming"]');
    assert.equal(await page.textContent("#account"), "olga (operator)");
    assert.deepEqual(Object.keys(await seqs(page)), ["a"]);
    await openControls(page, "a");
    assert.equal(await page.isHidden("#read-only"), true);
    const row = '.control[data-control="brightness"]';
    await page.fill(`${row} input[type="number"]`, "70");
    await page.press(`${row} input[type="number"]`, "Enter");
    await page.waitForSelector(`${row} .result[data-state="applied"]`);
    assert.equal((await server.cameras("vic:vic-password")).find((c) => c.camera_id === "a").controls.brightness, 70);
    await page.waitForSelector(`${row} .changed`);
    assert.match(await page.textContent(`${row} .changed`), /^changed by olga at /);

    await page.click("#panel-close");
    await page.click("#logout button");
    await page.waitForURL(/\/login$/);
    await signIn(page, "vic", "vic-password");
    await page.waitForSelector('.tile[data-camera-id="b"][data-state="Streaming"]');
    assert.equal(await page.textContent("#account"), "vic (viewer)");
    await openControls(page, "a");
    await page.waitForSelector("#read-only:not([hidden])");
    assert.match(await page.textContent("#read-only"), /viewer/);
    assert.equal(await page.isDisabled(`${row} input[type="number"]`), true);
    assert.equal(await page.isDisabled("#panel-reset"), true);

    // Signed out, a wrong password lets nobody in and says so.
    await page.click("#panel-close");
    await page.click("#logout button");
    await page.waitForURL(/\/login$/);
    await signIn(page, "vic", "wrong-password");
    await page.waitForFunction(() => document.getElementById("login-result").textContent.includes("wrong"));
    assert.deepEqual(errors.filter((e) => !e.includes("401")), []);
    await page.close();
  } finally {
    await server.stop();
  }
});

test("over HTTPS with a self-signed certificate: sign in, a Secure cookie, live tiles over wss", async () => {
  const server = await Camfleet.withConfig(
    "server:\n  tls: self_signed\n" +
      `auth:\n  users:\n    - {name: olga, role: operator, password_hash: "${hashPassword("olga-password")}"}\n` +
      "cameras:\n  - id: a\n    source: {kind: synthetic, width: 320, height: 240, fps: 10}\n",
    "https",
  );
  try {
    const { page, errors } = await open(server);
    assert.match(page.url(), /^https:.*\/login$/);
    await page.fill("#name", "olga");
    await page.fill("#password", "olga-password");
    await page.click("form.signin button[type=submit]");
    await page.waitForSelector('.tile[data-camera-id="a"][data-state="Streaming"]');
    await waitAllAdvance(page, ["a"]);
    const [cookie] = await page.context().cookies();
    assert.equal(cookie.name, "camfleet_session");
    assert.equal(cookie.secure, true);
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, "Strict");
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await server.stop();
  }
});

test("the page shows a lost server and recovers by itself", async () => {
  const server = await Camfleet.withConfig(
    "cameras:\n  - id: a\n    source: {kind: synthetic, width: 320, height: 240, fps: 15}\n",
  );
  try {
    const { page } = await open(server);
    await page.waitForSelector('#connection[data-state="connected"]');
    await waitAllAdvance(page, ["a"]);
    await server.stop();
    await page.waitForSelector('#connection[data-state="disconnected"]');
    await server.start();
    await page.waitForSelector('#connection[data-state="connected"]', { timeout: 20000 });
    await waitAllAdvance(page, ["a"]);
    await page.close();
  } finally {
    await server.stop();
  }
});

test("8 cameras at 30 fps: every tile keeps up with its camera", async () => {
  let yaml = "cameras:\n";
  for (let i = 0; i < 8; i++) {
    yaml += `  - id: cam${i}\n    source: {kind: synthetic, width: 640, height: 360, fps: 30, prerender: 30}\n`;
  }
  const server = await Camfleet.withConfig(yaml);
  try {
    const { page } = await open(server);
    await page.waitForFunction(() => document.querySelectorAll('.tile[data-state="Streaming"]').length === 8);
    // Every tile keeps advancing and never falls behind: three times over, each tile
    // catches up with the frame its camera had just published.
    for (let round = 0; round < 3; round++) {
      const latest = Object.fromEntries((await server.cameras()).map((c) => [c.camera_id, c.last_frame_seq]));
      await page.waitForFunction(
        (latest) => [...document.querySelectorAll(".tile")].every((e) => Number(e.dataset.seq || 0) >= latest[e.dataset.cameraId]),
        latest,
      );
    }
    await page.close();
  } finally {
    await server.stop();
  }
});
