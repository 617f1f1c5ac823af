// One dashboard over several hosts, in real headless Chromium: three camfleet processes,
// each in a network namespace of its own with its own address on a bridge, and one
// mosquitto, as three machines on a LAN with a broker would be.
//
// Needs root (the test makes the namespaces, veth pairs and bridge with `ip`), which the
// test command has; `tests/deps.sh netns` installs iproute2 where it is missing.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { Camfleet, launchBrowser, open, sleep, startBroker, waitAllAdvance } from "./harness.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => browser?.close());

const ip = (...args) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });

// A bridge in the test's namespace at NET.1 and, for each name, a namespace joined to it by
// a veth pair, at NET.11, NET.12, ... Names are short and carry the test's pid, so that runs
// side by side do not meet; `remove()` takes everything away again.
function lan(names) {
  const tag = `cf${process.pid % 10000}`;
  const net = `10.231.${process.pid % 250}`;
  const bridge = `${tag}br`;
  const made = { namespaces: [], bridge: false };
  const remove = () => {
    for (const ns of made.namespaces) {
      try {
        ip("netns", "del", ns);
      } catch {}
    }
    if (made.bridge) {
      try {
        ip("link", "del", bridge);
      } catch {}
    }
  };
  try {
    ip("link", "add", bridge, "type", "bridge");
    made.bridge = true;
    ip("addr", "add", `${net}.1/24`, "dev", bridge);
    ip("link", "set", bridge, "up");
    const hosts = names.map((name, i) => {
      const netns = `${tag}-${name}`;
      const [outside, inside] = [`${tag}-${i}h`, `${tag}-${i}n`];
      ip("netns", "add", netns);
      made.namespaces.push(netns);
      ip("link", "add", outside, "type", "veth", "peer", "name", inside);
      ip("link", "set", inside, "netns", netns);
      ip("link", "set", outside, "master", bridge);
      ip("link", "set", outside, "up");
      const address = `${net}.${11 + i}`;
      ip("-n", netns, "addr", "add", `${address}/24`, "dev", inside);
      ip("-n", netns, "link", "set", inside, "up");
      ip("-n", netns, "link", "set", "lo", "up");
      return { name, netns, address };
    });
    return { gateway: `${net}.1`, hosts, remove };
  } catch (e) {
    remove();
    throw new Error(`could not make the test's network namespaces (ip: ${e.stderr ?? e}); this test needs root`);
  }
}

test("three hosts in their own network namespaces: one dashboard shows all, controls one, plays another's video, sees one go offline", async () => {
  const net = lan(["alpha", "beta", "gamma"]);
  const servers = [];
  let broker;
  try {
    // The broker and the browser live on the bridge's address, outside every host.
    broker = await startBroker(net.gateway);
    for (const host of net.hosts) {
      const yaml =
        "auth: none\n" +
        `mqtt: {url: "${broker.url}", host_id: ${host.name}, snapshot_interval: 1, snapshot_width: 160}\n` +
        `cameras:\n  - id: ${host.name}-cam\n    source: {kind: synthetic, width: 320, height: 240, fps: 10}\n`;
      servers.push(await Camfleet.withConfig(yaml, { address: host.address, port: 8080, netns: host.netns }));
    }
    const [alpha, beta, gamma] = servers;
    const { page, errors } = await open(browser, alpha);
    await waitAllAdvance(page, ["alpha-cam"]);

    // Every other host's camera, streaming, with the thumbnail its host puts on the broker.
    const remote = (host) => `.host[data-host="${host}"] .remote-tile[data-camera-id="${host}-cam"]`;
    for (const host of ["beta", "gamma"]) {
      await page.waitForSelector(`${remote(host)}[data-state="Streaming"]`);
      await page.waitForFunction((sel) => document.querySelector(`${sel} img.thumbnail`).naturalWidth === 160, remote(host));
    }

    // beta's camera live, fetched by the browser from beta's own address.
    await page.click(`${remote("beta")} .watch`);
    await page.waitForFunction((sel) => document.querySelector(`${sel} img.remote-live`).naturalWidth === 320, remote("beta"));
    assert.ok((await page.getAttribute(`${remote("beta")} img.remote-live`, "src")).startsWith(`${beta.url}/`));
    const watcher = async () => {
      const viewers = await (await fetch(`${beta.url}/api/viewers`)).json();
      return viewers.find((v) => v.camera === "beta-cam" && v.kind === "mjpeg");
    };
    const first = await watcher();
    // The browser's own address, not alpha's: nothing is relayed through alpha.
    assert.equal(first?.client, net.gateway, JSON.stringify(first));
    // And it keeps playing: beta goes on sending that viewer frames. At 10 fps the next
    // one is due in 100 ms; 10 s leaves a loaded machine a wide margin.
    const deadline = Date.now() + 10000;
    for (;;) {
      const later = await watcher();
      assert.ok(later, "the browser stopped watching beta-cam");
      if (later.frames_sent > first.frames_sent) break;
      assert.ok(Date.now() < deadline, `beta sent the browser no frame after its ${first.frames_sent}th in 10 s`);
      await sleep(100);
    }

    // A control on gamma, changed from alpha's page over the broker.
    const row = `${remote("gamma")} .row[data-control="brightness"]`;
    await page.fill(`${row} input`, "77");
    await page.click(`${row} button`);
    await page.waitForSelector(`${row} .result[data-state="applied"]`);
    assert.equal((await gamma.cameras())[0].controls.brightness, 77);
    await page.fill(`${row} input`, "999");
    await page.press(`${row} input`, "Enter");
    await page.waitForSelector(`${row} .result[data-state="error"]`);
    assert.match(await page.textContent(`${row} .result`), /0 to 255/);
    assert.equal((await gamma.cameras())[0].controls.brightness, 77);

    // gamma dies without a goodbye: within the broker's keep-alive (1.5 x 10 s) and the
    // page's 2 s poll, alpha's page shows it offline, its camera greyed out, not removed.
    await gamma.stop("SIGKILL");
    await page.waitForSelector('.host[data-host="gamma"][data-online="false"]', { timeout: 40000 });
    assert.equal(await page.locator(remote("gamma")).count(), 1);
    assert.ok(await page.isDisabled(`${row} input`));
    assert.equal(await page.getAttribute('.host[data-host="beta"]', "data-online"), "true");
    assert.deepEqual(errors.filter((e) => !e.includes("ERR_")), []);
    await page.close();
  } finally {
    for (const server of servers) await server.stop();
    broker?.stop();
    net.remove();
  }
});
