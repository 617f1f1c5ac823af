// The dashboard in real headless Chromium, against a real camfleet process.
//
// Run by `cargo test --test browser`, which installs Chromium and playwright-core and sets
// CAMFLEET_BIN (the camfleet binary) and CAMFLEET_REPO (the repository).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, REPO, Camfleet, freePort, launchBrowser, open as openPage, prefixProxy, seqs, waitAllAdvance } from "./harness.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => browser?.close());

const open = (server, viewport, options) => openPage(browser, server, viewport, options);

async function openControls(page, cameraId) {
  await page.click(`.tile[data-camera-id="${cameraId}"] .open-controls`);
  await page.waitForSelector('#panel:not([hidden]) .control[data-control="brightness"]');
}

test("the default fleet: a live tile per camera, no console errors", async () => {
  const server = await Camfleet.withConfig(
    readFileSync(join(REPO, "cameras.yaml"), "utf8"),
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
    // Nothing marked hidden shows (the other hosts' section, sign-out without accounts).
    const shownHidden = await page.$$eval("[hidden]", (els) =>
      els.filter((e) => getComputedStyle(e).display !== "none").map((e) => e.id || e.className),
    );
    assert.deepEqual(shownHidden, []);
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

test("before the WebSocket opens (and where it never does): every camera with a snapshot, its URLs and full screen", async () => {
  const server = await Camfleet.withConfig(readFileSync(join(REPO, "cameras.yaml"), "utf8"));
  try {
    // A WebSocket that never opens, as behind a proxy that does not pass them.
    const { page, errors } = await open(server, undefined, {
      setup: (page) =>
        page.addInitScript(() => {
          window.WebSocket = class {
            static OPEN = 1;
            readyState = 0;
            send() {}
            close() {}
          };
        }),
    });
    const listed = (await server.cameras()).map((c) => c.camera_id);
    await page.waitForFunction(
      (n) => [...document.querySelectorAll(".tile")].filter((t) => t.dataset.snapshot === "shown" && t.dataset.shown).length === n,
      listed.length,
    );
    const states = await page.$$eval(".tile", (els) => els.map((e) => e.dataset.state));
    assert.ok(states.every((s) => ["Streaming", "Opening"].includes(s)), states.join(","));
    const drawn = await page.$eval('.tile[data-camera-id="lobby"] canvas', (c) => [c.width, c.height]);
    assert.deepEqual(drawn, [640, 480]);

    // Each tile's URLs are absolute and serve what they say.
    const links = await page.$eval('.tile[data-camera-id="lobby"]', (el) => ({
      stream: el.querySelector(".stream-url").href,
      snapshot: el.querySelector(".snapshot-url").href,
    }));
    assert.equal(links.stream, `${server.url}/cameras/lobby/stream.mjpg`);
    assert.equal(links.snapshot, `${server.url}/cameras/lobby/snapshot.jpg`);
    const snapshot = await fetch(links.snapshot);
    assert.equal(snapshot.headers.get("content-type"), "image/jpeg");
    await snapshot.arrayBuffer();
    const stream = await fetch(links.stream, { method: "HEAD" });
    assert.match(stream.headers.get("content-type"), /^multipart\/x-mixed-replace/);
    await page.click('.tile[data-camera-id="lobby"] .links summary');
    await page.click('.tile[data-camera-id="lobby"] .copy[data-link="stream-url"]');
    await page.waitForFunction(() => document.querySelector('.tile[data-camera-id="lobby"] .copied').textContent !== "");

    await page.click('.tile[data-camera-id="lobby"] .fullscreen');
    await page.waitForFunction(() => document.fullscreenElement?.classList.contains("picture"));
    await page.evaluate(() => document.exitFullscreen());

    // Skipped frames are not reported as a fault.
    const meta = await page.$$eval(".tile .meta", (els) => els.map((e) => e.textContent).join(" | "));
    assert.ok(!meta.includes("dropped"), meta);
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await server.stop();
  }
});

test("under a path prefix behind a reverse proxy: live tiles, URLs under the prefix", async () => {
  const server = await Camfleet.withConfig(readFileSync(join(REPO, "cameras.yaml"), "utf8"));
  const proxy = await prefixProxy(server.url, "/cams/");
  try {
    const { page, errors } = await open(server, undefined, { url: proxy.url });
    const listed = (await server.cameras()).map((c) => c.camera_id);
    await page.waitForFunction((n) => document.querySelectorAll(".tile").length === n, listed.length);
    await waitAllAdvance(page, listed);
    await page.waitForSelector('#connection[data-state="connected"]');
    const stream = await page.$eval('.tile[data-camera-id="lobby"] .stream-url', (a) => a.href);
    assert.equal(stream, `${proxy.url}cameras/lobby/stream.mjpg`);
    const snapshot = await fetch(`${proxy.url}cameras/lobby/snapshot.jpg`);
    assert.equal(snapshot.status, 200);
    await snapshot.arrayBuffer();
    await openControls(page, "lobby");
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    proxy.close();
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
    { scheme: "https" },
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

test("a grid of 8 HD cameras gets previews; an enlarged tile gets full frames", async () => {
  let yaml = "cameras:\n";
  const ids = [];
  for (let i = 0; i < 8; i++) {
    ids.push(`hd${i}`);
    yaml += `  - id: hd${i}\n    source: {kind: synthetic, width: 1280, height: 720, fps: 15, pattern: noise, prerender: 15}\n`;
  }
  const server = await Camfleet.withConfig(yaml);
  const received = [];
  try {
    const { page, errors } = await open(server, undefined, {
      // Every WebSocket message the page receives, by size: status messages are small,
      // frames are JPEGs of several KB.
      setup: (page) =>
        page.on("websocket", (ws) =>
          ws.on("framereceived", ({ payload }) => received.push(typeof payload === "string" ? payload.length : payload.byteLength)),
        ),
    });
    await page.waitForFunction(() => document.querySelectorAll('.tile[data-state="Streaming"]').length === 8);
    const widths = await page.$$eval(".tile", (els) => els.map((e) => Number(e.dataset.previewWidth)));
    assert.ok(widths.every((w) => w > 0 && w <= 640), `grid tiles ask for previews: ${widths}`);
    // Over the next frames of every camera, each tile draws its preview at the asked width.
    await waitAllAdvance(page, ids);
    await waitAllAdvance(page, ids);
    const drawn = await page.$$eval(".tile canvas.live", (els) => els.map((c) => [c.width, c.height]));
    for (const [i, [w, h]] of drawn.entries()) {
      assert.equal(w, widths[i]);
      assert.equal(h, Math.floor((720 * w) / 1280));
    }
    const measure = async () => {
      received.length = 0;
      const started = Date.now();
      for (let i = 0; i < 3; i++) await waitAllAdvance(page, ids);
      const seconds = (Date.now() - started) / 1000;
      const frames = received.filter((n) => n > 1500);
      const bytes = received.reduce((a, b) => a + b, 0);
      return { perSecond: bytes / seconds, perFrame: frames.reduce((a, b) => a + b, 0) / frames.length };
    };
    const previews = await measure();
    // Enlarged, every tile asks for full frames, which it draws at the camera's size.
    for (const id of ids) await page.click(`.tile[data-camera-id="${id}"] .enlarge`);
    await page.waitForFunction(() => [...document.querySelectorAll(".tile")].every((e) => e.dataset.previewWidth === "0"));
    await page.waitForFunction(() => [...document.querySelectorAll(".tile canvas.live")].every((c) => c.width === 1280));
    const full = await measure();
    console.log(
      `dashboard, 8 cameras 1280x720 at 15 fps: previews ${(previews.perSecond / 1e6).toFixed(2)} MB/s ` +
        `(${(previews.perFrame / 1e3).toFixed(1)} KB a frame, widths ${widths}), ` +
        `full frames ${(full.perSecond / 1e6).toFixed(2)} MB/s (${(full.perFrame / 1e3).toFixed(1)} KB a frame)`,
    );
    assert.ok(previews.perFrame * 2 < full.perFrame, `${previews.perFrame} vs ${full.perFrame}`);
    assert.deepEqual(errors, []);
  } finally {
    await server.stop();
  }
});

// An H.264 camera and the same picture as MJPEG, side by side.
const H264_FLEET =
  "server:\n  rtsp_listen: \"off\"\ncameras:\n" +
  "  - id: h264\n    source: {kind: synthetic, pixel_format: H264, width: 640, height: 480, fps: 30, prerender: 60}\n" +
  "  - id: mjpeg\n    source: {kind: synthetic, width: 640, height: 480, fps: 30, prerender: 60}\n";
const H264_TILE = '.tile[data-camera-id="h264"]';

// A sample of the tile's canvas: its size, how many colours, and a checksum.
const canvasSample = (page, tile) =>
  page.$eval(`${tile} .live`, (c) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    const colours = new Set();
    let sum = 0;
    for (let i = 0; i < d.length; i += 4 * 97) {
      colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      sum = (sum * 31 + d[i] + d[i + 1] + d[i + 2]) | 0;
    }
    return { size: [c.width, c.height], colours: colours.size, sum };
  });

const shownCount = (page, tile) => page.$eval(tile, (e) => Number(e.dataset.shown || 0));

test("an H.264 camera: WebCodecs draws its moving picture; latency and bytes against MJPEG", async () => {
  const server = await Camfleet.withConfig(H264_FLEET);
  try {
    const { page, errors } = await open(server);
    await page.waitForFunction((t) => document.querySelector(t)?.dataset.decoder === "webcodecs", H264_TILE);
    await page.waitForFunction((t) => Number(document.querySelector(t)?.dataset.shown || 0) > 30, H264_TILE);
    const first = await canvasSample(page, H264_TILE);
    assert.deepEqual(first.size, [640, 480]);
    assert.ok(first.colours > 8, `a decoded picture, not a flat one: ${first.colours} colours`);
    const drawn = await shownCount(page, H264_TILE);
    await page.waitForFunction(({ t, n }) => Number(document.querySelector(t).dataset.shown) > n + 15, { t: H264_TILE, n: drawn });
    const later = await canvasSample(page, H264_TILE);
    assert.notEqual(later.sum, first.sum, "the picture moves");

    // Measured over ten seconds of drawing (figures for docs/BENCHMARKS.md).
    const before = Object.fromEntries((await server.cameras()).map((c) => [c.camera_id, c]));
    const started = Date.now();
    const viewersBefore = await (await fetch(`${server.url}/api/viewers`)).json();
    await page.waitForFunction(({ t, n }) => Number(document.querySelector(t).dataset.shown) > n + 300, {
      t: H264_TILE,
      n: await shownCount(page, H264_TILE),
    }, { timeout: 60000 });
    const seconds = (Date.now() - started) / 1000;
    const viewersAfter = await (await fetch(`${server.url}/api/viewers`)).json();
    const latencies = (await page.$eval(H264_TILE, (e) => e.drawLatencies)).slice(-300).sort((a, b) => a - b);
    const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
    const wsBytes = (list) => list.filter((v) => v.camera === "h264" && v.kind === "websocket").reduce((n, v) => n + v.bytes_sent, 0);
    const after = Object.fromEntries((await server.cameras()).map((c) => [c.camera_id, c]));
    const figures = {
      draws: latencies.length,
      capture_to_draw_ms: { p50: at(0.5), p99: at(0.99) },
      websocket_bytes_per_s_h264: Math.round((wsBytes(viewersAfter) - wsBytes(viewersBefore)) / seconds),
      camera_bits_per_s: { h264: Math.round(after.h264.bitrate_bps), mjpeg: Math.round(after.mjpeg.bitrate_bps) },
      gop_frames: after.h264.gop_frames,
      codec: after.h264.codec,
      frames_published: after.h264.last_frame_seq - before.h264.last_frame_seq,
    };
    console.log(`H.264 tile: ${JSON.stringify(figures)}`);
    assert.ok(latencies.length >= 300);
    assert.equal(after.h264.codec, figures.codec);
    assert.ok(after.h264.codec.startsWith("avc1."));
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await server.stop();
  }
});

test("without WebCodecs, an H.264 tile says how to get it and shows snapshots", async () => {
  const server = await Camfleet.withConfig(H264_FLEET);
  try {
    const { page, errors } = await open(server, undefined, {
      setup: (p) => p.addInitScript(() => {
        delete window.VideoDecoder;
        delete window.EncodedVideoChunk;
      }),
    });
    await page.waitForFunction((t) => document.querySelector(t)?.dataset.decoder === "snapshots", H264_TILE);
    const note = await page.$eval(`${H264_TILE} .codec-note`, (e) => e.textContent);
    assert.match(note, /HTTPS/);
    assert.match(note, /localhost/);
    await page.waitForFunction((t) => Number(document.querySelector(t).dataset.shown || 0) >= 1, H264_TILE);
    const picture = await canvasSample(page, H264_TILE);
    assert.deepEqual(picture.size, [640, 480]);
    assert.ok(picture.colours > 8, `a snapshot drawn: ${picture.colours} colours`);
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await server.stop();
  }
});

test("stream.mp4 of an H.264 camera plays in a <video> element", async () => {
  const server = await Camfleet.withConfig(H264_FLEET);
  try {
    const { page, errors } = await open(server);
    await page.evaluate(() => {
      const video = document.createElement("video");
      video.id = "player";
      video.muted = true;
      video.autoplay = true;
      video.src = "cameras/h264/stream.mp4";
      document.body.append(video);
    });
    const played = () =>
      page.$eval("#player", (v) => ({
        size: [v.videoWidth, v.videoHeight],
        frames: v.getVideoPlaybackQuality().totalVideoFrames,
        time: v.currentTime,
        error: v.error?.message ?? null,
      }));
    await page.waitForFunction(() => {
      const v = document.querySelector("#player");
      return v.error || v.getVideoPlaybackQuality().totalVideoFrames > 30;
    });
    const first = await played();
    assert.equal(first.error, null);
    assert.deepEqual(first.size, [640, 480]);
    // It keeps playing: more frames decoded, the clock moving on.
    await page.waitForFunction((n) => {
      const v = document.querySelector("#player");
      return v.error || v.getVideoPlaybackQuality().totalVideoFrames > n + 30;
    }, first.frames);
    const later = await played();
    assert.equal(later.error, null);
    assert.ok(later.time > first.time, `the video's clock moves: ${first.time} then ${later.time}`);
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await server.stop();
  }
});
