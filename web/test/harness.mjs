// What the Chromium tests share: camfleet and mosquitto processes of the test's own, and
// pages that collect their console errors.
//
// CAMFLEET_BIN is the camfleet binary and CAMFLEET_REPO the repository; `cargo test --test
// browser` sets both.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import http from "node:http";
import net from "node:net";
import { chromium } from "playwright-core";

export const BIN = process.env.CAMFLEET_BIN;
export const REPO = process.env.CAMFLEET_REPO;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Whether something listens on `address`:`port` yet.
export const listening = (port, address = "127.0.0.1") =>
  new Promise((resolve) => {
    const s = net.connect(port, address, () => s.end(() => resolve(true)));
    s.on("error", () => resolve(false));
  });

// Polls `ready` every 50 ms until it holds; `what` names it in the error after 10 s.
async function until(ready, what) {
  for (let i = 0; i < 200; i++) {
    try {
      if (await ready()) return;
    } catch {}
    await sleep(50);
  }
  throw new Error(`${what} did not start within 10 s`);
}

export class Camfleet {
  // `address` is the one the server listens on and the test reaches it at; `netns` the
  // network namespace it runs in (none: the test's own).
  constructor(configPath, port, { scheme = "http", address = "127.0.0.1", netns } = {}) {
    this.configPath = configPath;
    this.port = port;
    this.scheme = scheme;
    this.address = address;
    this.netns = netns;
    this.url = `${scheme}://${address}:${port}`;
  }

  // `options.scheme` is "https" for a configuration that serves TLS.
  static async withConfig(yaml, options = {}) {
    const dir = mkdtempSync(join(tmpdir(), "camfleet-browser-"));
    const path = join(dir, "cameras.yaml");
    writeFileSync(path, yaml);
    const server = new Camfleet(path, options.port ?? (await freePort()), options);
    await server.start();
    return server;
  }

  async start() {
    const stateDir = join(this.configPath, "..", "state");
    const args = ["serve", "--config", this.configPath, "--listen", `${this.address}:${this.port}`, "--state-dir", stateDir];
    const [cmd, argv] = this.netns ? ["ip", ["netns", "exec", this.netns, BIN, ...args]] : [BIN, args];
    this.child = spawn(cmd, argv, { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, RUST_LOG: "warn" } });
    const exited = new Promise((_, reject) =>
      this.child.once("exit", (code, signal) => reject(new Error(`camfleet exited (${code ?? signal}) before serving`))),
    );
    exited.catch(() => {});
    await Promise.race([
      exited,
      until(
        async () => (this.scheme === "https" ? listening(this.port, this.address) : (await fetch(`${this.url}/healthz`)).ok),
        `camfleet on ${this.url}`,
      ),
    ]);
  }

  // Ends the server: SIGTERM, its clean stop, or SIGKILL, a crash.
  async stop(signal = "SIGTERM") {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.kill(signal);
    await exited;
  }

  // `credentials` is NAME:PASSWORD on a server with accounts.
  async cameras(credentials) {
    const headers = credentials ? { Authorization: `Basic ${Buffer.from(credentials).toString("base64")}` } : {};
    return (await fetch(`${this.url}/api/cameras`, { headers })).json();
  }
}

// A mosquitto of the test's own, listening on `address` at a free port.
export async function startBroker(address = "127.0.0.1") {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "camfleet-broker-"));
  const conf = join(dir, "mosquitto.conf");
  writeFileSync(conf, `listener ${port} ${address}\nallow_anonymous true\n`);
  const child = spawn("/usr/sbin/mosquitto", ["-c", conf], { stdio: "ignore" });
  await until(() => listening(port, address), `mosquitto on ${address}:${port}`);
  return { address, port, url: `mqtt://${address}:${port}`, stop: () => child.kill() };
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

// A new page on `server`'s dashboard, with the console errors it logs.
// `url` is where the page is opened (the server's own URL unless given); `setup(page)` runs
// before the page loads.
export async function open(browser, server, viewport = { width: 1280, height: 800 }, { url, setup } = {}) {
  // A self-signed certificate is accepted as a user would after checking its fingerprint.
  const page = await browser.newPage({ viewport, ignoreHTTPSErrors: server.scheme === "https" });
  const errors = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(String(e)));
  await setup?.(page);
  await page.goto(url ?? server.url);
  return { page, errors };
}

// A reverse proxy that serves `target` under the path `prefix` (e.g. "/cams/"), WebSockets
// included, as nginx's `location /cams/ { proxy_pass http://camfleet/; }` with
// `proxy_set_header Host $host` and the upgrade headers does. Returns its URL.
export async function prefixProxy(target, prefix) {
  const { hostname, port } = new URL(target);
  const inner = (url) => url.slice(prefix.length - 1);
  const server = http.createServer((req, res) => {
    if (!req.url.startsWith(prefix)) {
      res.writeHead(404).end("outside the proxied prefix");
      return;
    }
    const upstream = http.request(
      { host: hostname, port, method: req.method, path: inner(req.url), headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    res.on("close", () => upstream.destroy());
    req.pipe(upstream);
  });
  server.on("upgrade", (req, socket, head) => {
    if (!req.url.startsWith(prefix)) return socket.destroy();
    const upstream = net.connect(Number(port), hostname, () => {
      const lines = [`${req.method} ${inner(req.url)} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (head.length) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}${prefix}`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

// Each local tile's last frame number, by camera.
export const seqs = (page) =>
  page.$$eval(".tile", (els) => Object.fromEntries(els.map((e) => [e.dataset.cameraId, Number(e.dataset.seq)])));

export async function waitAllAdvance(page, ids, timeout = 10000) {
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
