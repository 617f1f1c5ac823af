// The camfleet dashboard: every camera live over one WebSocket, every control at hand.
import { Codec } from "./proto.js";

const CLIENT = "camfleet.v1.ClientMessage";
const SERVER = "camfleet.v1.ServerMessage";
const RECONNECT_FIRST_MS = 500;
const RECONNECT_MAX_MS = 8000;
// How often the MQTT link's state is read from /api/host.
const HOST_POLL_MS = 5000;
// How often the other hosts on the MQTT broker are read from /api/fleet.
const FLEET_POLL_MS = 2000;

const codec = await Codec.load();
const grid = document.getElementById("grid");
const connection = document.getElementById("connection");
const statsLine = document.getElementById("stats");
const panel = document.getElementById("panel");
const form = document.getElementById("controls");
const tileTemplate = document.getElementById("tile-template");

const tiles = new Map(); // camera id -> { el, status, watching, wantsFrames, next, decoding }
const pending = new Map(); // request id -> callback(result)
let socket = null;
let nextRequest = 1;
let retryMs = RECONNECT_FIRST_MS;
// Whether the WebSocket has listed the fleet yet; until then /api/cameras stands in.
let listed = false;
let panelCamera = null;
window.addEventListener("resize", () => {
  for (const t of tiles.values()) resized(t);
});
// Whether this connection may change controls: its role is operator or admin.
let operator = false;
let role = "";
const lastResults = new Map(); // "camera/control" -> { state, text }, kept across re-renders

form.addEventListener("submit", (e) => e.preventDefault());

function send(message) {
  if (socket?.readyState === WebSocket.OPEN) socket.send(codec.encode(CLIENT, message));
}

function request(kind, body, onResult) {
  const request_id = nextRequest++;
  if (onResult) pending.set(request_id, onResult);
  send({ [kind]: { ...body, request_id } });
  return request_id;
}

function setConnection(state, text) {
  connection.dataset.state = state;
  connection.textContent = text;
}

function connect() {
  setConnection("connecting", "Connecting…");
  socket = new WebSocket(new URL("ws", document.baseURI).href.replace(/^http/, "ws"));
  socket.binaryType = "arraybuffer";
  socket.onopen = () => {
    retryMs = RECONNECT_FIRST_MS;
    setConnection("connected", "Connected");
    send({ list_cameras: {} });
    request("subscribe", { camera_ids: [], send_frames: false, max_fps: 0 });
  };
  socket.onmessage = (event) => receive(codec.decode(SERVER, new Uint8Array(event.data)));
  socket.onclose = () => {
    socket = null;
    for (const t of tiles.values()) t.watching = false;
    for (const [, callback] of pending) callback({ ok: false, error: "connection lost" });
    pending.clear();
    const wait = retryMs * (0.75 + Math.random() / 2);
    retryMs = Math.min(retryMs * 2, RECONNECT_MAX_MS);
    setConnection("disconnected", `Disconnected; retrying in ${(wait / 1000).toFixed(1)} s`);
    setTimeout(connect, wait);
  };
}

function receive(msg) {
  switch (msg.$kind) {
    case "hello":
      showAccount(msg.hello);
      break;
    case "camera_list":
      listed = true;
      syncFleet(msg.camera_list.cameras);
      break;
    case "camera_status":
      updateTile(msg.camera_status);
      break;
    case "frame":
      showFrame(msg.frame);
      break;
    case "control_list":
    case "command_result": {
      const body = msg[msg.$kind];
      const callback = pending.get(body.request_id);
      pending.delete(body.request_id);
      callback?.(body);
      break;
    }
    case "session_stats":
      // Skipping is how a page that is busier than the cameras stays live: it draws the
      // newest frame instead of a queue of old ones.
      statsLine.textContent =
        `This page skipped ${msg.session_stats.frames_replaced} older frames` +
        (msg.session_stats.messages_dropped ? ` and ${msg.session_stats.messages_dropped} updates` : "") +
        " to stay live";
      break;
    case "error":
      setConnection("connected", `Connected; server said: ${msg.error.message}`);
      break;
  }
}

// The fleet as the server lists it: tiles appear and disappear with cameras.
function syncFleet(cameras) {
  const ids = new Set(cameras.map((c) => c.camera_id));
  for (const [id, t] of tiles) {
    if (!ids.has(id)) {
      t.el.remove();
      tiles.delete(id);
    }
  }
  for (const status of cameras) updateTile(status);
  document.getElementById("empty").hidden = cameras.length > 0;
}

function tileFor(status) {
  let t = tiles.get(status.camera_id);
  if (t) return t;
  const el = tileTemplate.content.firstElementChild.cloneNode(true);
  el.dataset.cameraId = status.camera_id;
  el.dataset.seq = "0";
  el.setAttribute("aria-label", status.name || status.camera_id);
  const enlarge = el.querySelector(".enlarge");
  enlarge.addEventListener("click", () => {
    const on = el.classList.toggle("enlarged");
    enlarge.setAttribute("aria-pressed", String(on));
    enlarge.textContent = on ? "Shrink" : "Enlarge";
    el.scrollIntoView({ block: "nearest" });
    resized(t);
  });
  el.querySelector(".open-controls").addEventListener("click", () => openPanel(status.camera_id));
  const picture = el.querySelector(".picture");
  el.querySelector(".fullscreen").addEventListener("click", () => picture.requestFullscreen?.());
  picture.addEventListener("fullscreenchange", () => resized(t));
  showLinks(el, status.camera_id);
  t = { el, status, watching: false, wantsFrames: false, next: null, decoding: false };
  tiles.set(status.camera_id, t);
  grid.append(el);
  // `/#camera=ID` (the link MQTT and Home Assistant give for a camera) brings it to hand.
  if (decodeURIComponent(location.hash) === `#camera=${status.camera_id}`) {
    el.scrollIntoView({ block: "nearest" });
    el.focus();
  }
  return t;
}

function updateTile(status) {
  const t = tileFor(status);
  t.status = status;
  const el = t.el;
  const state = codec.enumName("camfleet.v1.CameraState", status.state).replace("CAMERA_STATE_", "");
  const label = state.charAt(0) + state.slice(1).toLowerCase();
  el.dataset.state = label;
  el.querySelector(".name").textContent = status.name || status.camera_id;
  const badge = el.querySelector(".state");
  badge.dataset.state = label;
  badge.textContent = status.capture_mode === "on_demand" ? `${label} · on demand` : label;
  el.querySelector(".reason").textContent = label === "Streaming" ? "" : status.reason;
  el.querySelector(".live").setAttribute("aria-label", `Live picture of ${status.name || status.camera_id}`);
  const size = status.width ? `${status.width}×${status.height} ${status.pixel_format}` : "no format yet";
  el.title = status.format_note;
  const meta = el.querySelector(".meta");
  meta.textContent =
    `${status.fps.toFixed(1)} fps · ${size}` +
    (status.frames_dropped ? ` · ${status.frames_dropped} skipped by the camera` : "") +
    (status.viewers ? ` · ${status.viewers} watching` : "");
  meta.title = "Frames the device or the capture loop skipped since the server started; a " +
    "few at start and under load are normal.";
  // On-demand cameras are opened only when someone asks to watch them here.
  const buttons = el.querySelector(".buttons");
  let watch = buttons.querySelector(".watch");
  if (status.capture_mode === "on_demand" && !watch) {
    watch = document.createElement("button");
    watch.type = "button";
    watch.className = "watch";
    watch.addEventListener("click", () => setWatching(t, !t.wantsFrames));
    buttons.prepend(watch);
  }
  if (watch) watch.textContent = t.wantsFrames ? "Stop watching" : "Watch";
  if (status.capture_mode !== "on_demand") t.wantsFrames = true;
  if (t.wantsFrames && !t.watching && socket?.readyState === WebSocket.OPEN) setWatching(t, true);
  if (panelCamera === status.camera_id) {
    document.getElementById("panel-state").textContent =
      label === "Streaming" ? "" : `${label}: ${status.reason}`;
  }
}

// The preview widths the server makes. A tile in the grid asks for the smallest preview at
// least as wide as it shows the picture, if that is at most half the camera's width (the
// server then decodes the frame at half size or less, which is cheap); an enlarged or full
// screen tile, or one nearly as wide as the picture, asks for full frames.
const PREVIEW_WIDTHS = [160, 240, 320, 480, 640, 960];

function previewWidth(t) {
  const picture = t.el.querySelector(".picture");
  if (t.el.classList.contains("enlarged") || document.fullscreenElement === picture) return 0;
  const need = picture.clientWidth * (window.devicePixelRatio || 1);
  const width = PREVIEW_WIDTHS.find((w) => w >= need);
  return need > 0 && width && width * 2 <= t.status.width ? width : 0;
}

// Asks again for a tile's frames when the size it shows them at has changed.
function resized(t) {
  if (t.watching && previewWidth(t) !== t.previewWidth) setWatching(t, true);
}

function setWatching(t, on) {
  t.wantsFrames = on;
  t.watching = on;
  const camera_ids = [t.status.camera_id];
  t.previewWidth = on ? previewWidth(t) : 0;
  t.el.dataset.previewWidth = String(t.previewWidth);
  if (on) request("subscribe", { camera_ids, send_frames: true, max_fps: 0, preview_width: t.previewWidth });
  else {
    // Unsubscribing drops status too; ask for status again without frames.
    request("unsubscribe", { camera_ids });
    request("subscribe", { camera_ids, send_frames: false, max_fps: 0, preview_width: 0 });
  }
  const watch = t.el.querySelector(".watch");
  if (watch) watch.textContent = on ? "Stop watching" : "Watch";
}

// The camera's MJPEG and snapshot URLs, absolute and ready to copy into VLC, OctoPrint or
// Home Assistant.
function showLinks(el, id) {
  const path = `cameras/${encodeURIComponent(id)}/`;
  for (const [cls, file] of [["stream-url", "stream.mjpg"], ["snapshot-url", "snapshot.jpg"]]) {
    const a = el.querySelector(`.${cls}`);
    a.href = new URL(path + file, document.baseURI).href;
    a.textContent = a.href;
  }
  const said = el.querySelector(".copied");
  for (const button of el.querySelectorAll(".copy")) {
    button.addEventListener("click", async () => {
      const url = el.querySelector(`.${button.dataset.link}`).href;
      try {
        await navigator.clipboard.writeText(url);
        said.textContent = "Copied.";
      } catch {
        // No clipboard outside a secure context: select the URL for Ctrl-C instead.
        const range = document.createRange();
        range.selectNodeContents(el.querySelector(`.${button.dataset.link}`));
        getSelection().removeAllRanges();
        getSelection().addRange(range);
        said.textContent = "Selected: press Ctrl-C to copy.";
      }
    });
  }
}

// Until the WebSocket lists the fleet (or where a proxy does not pass WebSockets), the
// cameras as /api/cameras lists them, each with a snapshot.
async function preload() {
  let cameras;
  try {
    const response = await fetch("api/cameras", { cache: "no-store" });
    if (!response.ok) return;
    cameras = await response.json();
  } catch {
    return;
  }
  if (listed) return;
  syncFleet(cameras.map((s) => ({
    ...s,
    state: codec.enumValue("camfleet.v1.CameraState", `CAMERA_STATE_${s.state.toUpperCase()}`),
    controls: Object.entries(s.controls).map(([name, value]) => ({ name, value })),
  })));
  for (const s of cameras) {
    // A snapshot would open an on-demand camera; those wait for "Watch".
    if (s.capture_mode !== "on_demand") drawSnapshot(s.camera_id);
  }
}

async function drawSnapshot(id) {
  try {
    // A camera that is down answers 503 with its NO SIGNAL picture, which is worth showing.
    const response = await fetch(`cameras/${encodeURIComponent(id)}/snapshot.jpg`, { cache: "no-store" });
    if (!response.headers.get("content-type")?.startsWith("image/jpeg")) return;
    const jpeg = await response.blob();
    const t = tiles.get(id);
    if (!t || t.el.dataset.shown) return; // live frames came first
    t.el.dataset.snapshot = "shown";
    t.next = { jpeg };
    if (!t.decoding) drawFrames(t);
  } catch {
    // The live stream will draw it.
  }
}

// Frames are decoded off the main thread and drawn newest-first: while one decodes, a
// newer frame replaces any that waits, so a busy page skips frames instead of falling
// behind. `data-seq` is the newest frame received, `data-shown` counts frames drawn.
function showFrame(frame) {
  const t = tiles.get(frame.camera_id);
  if (!t) return;
  t.el.dataset.seq = String(frame.seq);
  if (frame.codec === codec.enumValue("camfleet.v1.Codec", "CODEC_H264")) {
    showH264(t, frame);
    return;
  }
  t.next = frame;
  if (!t.decoding) drawFrames(t);
}

// ---- cameras that send H.264 ----

// An H.264 camera's frames are decoded by the browser's WebCodecs VideoDecoder, set for
// latency (no reordering, `optimizeForLatency`), and each picture is drawn as it comes
// out. The server sends every frame of a GOP in order, starting at a keyframe; a page
// that falls behind (pictures queue in the decoder) drops frames until the next keyframe
// instead of building a backlog. Without WebCodecs (plain HTTP on a LAN address is not a
// secure context), the tile says so and shows a snapshot every few seconds.
const H264_SNAPSHOT_MS = 2000;
// Pictures waiting in the decoder beyond which the page waits for the next keyframe.
const H264_MAX_QUEUE = 3;
// Capture-to-draw delays kept per tile, in milliseconds.
const DRAW_LATENCIES_KEPT = 2000;

function showH264(t, frame) {
  t.el.dataset.codec = "h264";
  if (typeof VideoDecoder === "undefined") {
    h264Fallback(t);
    return;
  }
  let d = t.h264;
  if (frame.keyframe && (!d || d.codec !== frame.codec_string || d.decoder.state === "closed")) {
    if (d && d.decoder.state !== "closed") d.decoder.close();
    const decoder = new VideoDecoder({
      output: (picture) => drawPicture(t, picture),
      error: () => {
        // The next keyframe starts a new decoder.
        t.h264 = null;
      },
    });
    // No `description`: the chunks are Annex B, with the parameter sets in each keyframe.
    decoder.configure({ codec: frame.codec_string, optimizeForLatency: true });
    d = t.h264 = { decoder, codec: frame.codec_string, waitForKeyframe: true };
    t.el.dataset.decoder = "webcodecs";
  }
  if (!d) return;
  if (!frame.keyframe && (d.waitForKeyframe || d.decoder.decodeQueueSize > H264_MAX_QUEUE)) {
    d.waitForKeyframe = true;
    t.el.dataset.skipped = String(Number(t.el.dataset.skipped || 0) + 1);
    return;
  }
  d.waitForKeyframe = false;
  d.decoder.decode(new EncodedVideoChunk({
    type: frame.keyframe ? "key" : "delta",
    // Capture time in microseconds since the epoch, which each picture carries to its draw.
    timestamp: frame.capture_timestamp,
    data: frame.h264,
  }));
}

function drawPicture(t, picture) {
  const canvas = t.el.querySelector(".live");
  if (canvas.width !== picture.displayWidth || canvas.height !== picture.displayHeight) {
    canvas.width = picture.displayWidth;
    canvas.height = picture.displayHeight;
  }
  canvas.getContext("2d").drawImage(picture, 0, 0);
  const latency = Date.now() - picture.timestamp / 1000;
  picture.close();
  const kept = (t.el.drawLatencies ??= []);
  kept.push(latency);
  if (kept.length > DRAW_LATENCIES_KEPT) kept.shift();
  t.el.dataset.shown = String(Number(t.el.dataset.shown || 0) + 1);
}

function h264Fallback(t) {
  if (t.snapshotTimer) return;
  t.el.dataset.decoder = "snapshots";
  const note = document.createElement("p");
  note.className = "note codec-note";
  note.textContent =
    "This camera sends H.264, which this browser can only decode on a secure page: open the " +
    "dashboard over HTTPS (server.tls in cameras.yaml) or at localhost. Until then it shows a " +
    "snapshot every few seconds.";
  t.el.querySelector(".picture").after(note);
  const id = t.status.camera_id;
  const refresh = () => {
    delete t.el.dataset.shown;
    drawSnapshot(id);
  };
  refresh();
  t.snapshotTimer = setInterval(refresh, H264_SNAPSHOT_MS);
}

async function drawFrames(t) {
  t.decoding = true;
  const canvas = t.el.querySelector(".live");
  const context = canvas.getContext("2d");
  while (t.next) {
    const frame = t.next;
    t.next = null;
    try {
      const picture = await createImageBitmap(new Blob([frame.jpeg], { type: "image/jpeg" }));
      if (canvas.width !== picture.width || canvas.height !== picture.height) {
        canvas.width = picture.width;
        canvas.height = picture.height;
      }
      context.drawImage(picture, 0, 0);
      picture.close();
      t.el.dataset.shown = String(Number(t.el.dataset.shown || 0) + 1);
    } catch {
      // A frame the browser cannot decode is skipped; the next one will do.
    }
  }
  t.decoding = false;
}

// ---- who is signed in ----

// The account and role this connection has; a viewer's controls are read-only. A server
// without accounts calls everyone `anyone`, and there is nothing to sign out of.
function showAccount(hello) {
  if (hello.sign_in_required) {
    // The sign-in cookie is gone or no longer valid.
    window.location.assign("login");
    return;
  }
  role = hello.role;
  operator = role === "operator" || role === "admin";
  const account = document.getElementById("account");
  account.textContent = hello.account === "anyone" ? "" : `${hello.account} (${role})`;
  account.dataset.role = role;
  document.getElementById("logout").hidden = hello.account === "anyone";
  showReadOnly();
}

// ---- the MQTT link ----

// Shows whether this host's link to its MQTT broker is up, and why not; nothing when the
// host has no link.
async function showBroker() {
  const line = document.getElementById("broker");
  try {
    const response = await fetch("api/host", { cache: "no-store" });
    if (!response.ok) return;
    const { mqtt } = await response.json();
    line.hidden = !mqtt;
    if (!mqtt) return;
    line.dataset.state = mqtt.state === "connected" ? "connected" : "disconnected";
    line.textContent = mqtt.state === "connected"
      ? `MQTT: connected to ${mqtt.broker}`
      : `MQTT: ${mqtt.state}${mqtt.reason ? `: ${mqtt.reason}` : ""}`;
  } catch {
    // The server is away; the connection line says so.
  }
}
showBroker();
setInterval(showBroker, HOST_POLL_MS);

// ---- the other hosts ----

// Every other host on the broker with its cameras, as /api/fleet lists them. Live video of
// a remote camera comes straight from its own host; commands go through this server and
// the broker, and come back with that host's outcome. A host that goes offline stays,
// greyed out.
const remoteHosts = new Map(); // host id -> { el, grid, tiles: Map(camera id -> el) }

async function showFleet() {
  let fleet;
  try {
    const response = await fetch("api/fleet", { cache: "no-store" });
    if (!response.ok) return;
    fleet = await response.json();
  } catch {
    return;
  }
  const section = document.getElementById("fleet");
  section.hidden = fleet.hosts.length === 0;
  for (const host of fleet.hosts) {
    let h = remoteHosts.get(host.host_id);
    if (!h) {
      const el = document.createElement("section");
      el.className = "host";
      el.dataset.host = host.host_id;
      const title = document.createElement("h2");
      const name = document.createElement("span");
      name.textContent = host.host_id;
      const state = document.createElement("span");
      state.className = "state host-state";
      title.append(name, state);
      const grid = document.createElement("div");
      grid.className = "grid";
      el.append(title, grid);
      section.append(el);
      h = { el, grid, tiles: new Map() };
      remoteHosts.set(host.host_id, h);
    }
    h.el.dataset.online = String(host.online);
    const badge = h.el.querySelector(".host-state");
    badge.textContent = host.online ? "online" : "offline";
    badge.dataset.state = host.online ? "Streaming" : "Reconnecting";
    for (const camera of host.cameras) updateRemoteTile(host, h, camera);
  }
}

function updateRemoteTile(host, h, camera) {
  let el = h.tiles.get(camera.camera_id);
  if (!el) {
    el = document.createElement("article");
    el.className = "tile remote-tile";
    el.dataset.host = host.host_id;
    el.dataset.cameraId = camera.camera_id;
    el.innerHTML = `<header><h2 class="name"></h2><span class="state" role="status"></span></header>
      <div class="picture"><img class="thumbnail" alt="" hidden><img class="remote-live" alt="" hidden><p class="reason"></p></div>
      <footer><span class="meta"></span><span class="buttons"><button type="button" class="watch">Watch</button></span></footer>
      <div class="controls"></div>`;
    const img = el.querySelector(".remote-live");
    el.querySelector(".watch").addEventListener("click", (e) => {
      // From the camera's own host, never through this one.
      const on = img.hidden;
      img.hidden = !on;
      el.querySelector(".thumbnail").hidden = on || !el.dataset.hasThumbnail;
      img.src = on ? el.dataset.mjpeg : "";
      if (!on) img.removeAttribute("src");
      e.target.textContent = on ? "Stop watching" : "Watch";
    });
    h.tiles.set(camera.camera_id, el);
    h.grid.append(el);
  }
  el.dataset.mjpeg = camera.urls?.mjpeg ?? "";
  // Between live views, the thumbnail its host publishes on the broker, when it does.
  const thumbnail = el.querySelector(".thumbnail");
  if (camera.thumbnail && el.querySelector(".remote-live").hidden) {
    refreshThumbnail(host.host_id, camera.camera_id, el, thumbnail);
  }
  el.dataset.state = camera.state;
  el.querySelector(".name").textContent = camera.name || camera.camera_id;
  const badge = el.querySelector(".state");
  badge.dataset.state = camera.state;
  badge.textContent = camera.state;
  el.querySelector(".reason").textContent = camera.state === "Streaming" ? "" : camera.reason;
  el.querySelector(".meta").textContent = `${Number(camera.fps).toFixed(1)} fps · ${camera.frames_dropped} dropped`;
  const controls = el.querySelector(".controls");
  for (const [name, value] of Object.entries(camera.controls ?? {})) {
    let row = controls.querySelector(`.row[data-control="${CSS.escape(name)}"]`);
    if (!row) {
      row = document.createElement("div");
      row.className = "row";
      row.dataset.control = name;
      const id = `remote-${host.host_id}-${camera.camera_id}-${name}`;
      row.innerHTML = `<label></label><input type="number"><button type="button">Set</button><span class="result" role="status"></span>`;
      row.querySelector("label").textContent = name.replaceAll("_", " ");
      row.querySelector("label").htmlFor = id;
      row.querySelector("input").id = id;
      row.querySelector("button").addEventListener("click", () => setRemoteControl(host.host_id, camera.camera_id, name, row));
      row.querySelector("input").addEventListener("keydown", (e) => {
        if (e.key === "Enter") setRemoteControl(host.host_id, camera.camera_id, name, row);
      });
      controls.append(row);
    }
    const input = row.querySelector("input");
    if (document.activeElement !== input && row.dataset.busy !== "true") input.value = value;
    input.disabled = !host.online || !operator;
    row.querySelector("button").disabled = !host.online || !operator;
  }
}

async function refreshThumbnail(host, camera, el, img) {
  const url = `api/fleet/${encodeURIComponent(host)}/${encodeURIComponent(camera)}/thumbnail.jpg`;
  try {
    const response = await fetch(url, { cache: "no-store" });
    if (!response.ok) return;
    const blob = await response.blob();
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(blob);
    el.dataset.hasThumbnail = "true";
    img.hidden = !el.querySelector(".remote-live").hidden;
  } catch {
    // The next poll tries again.
  }
}

async function setRemoteControl(host, camera, name, row) {
  const result = row.querySelector(".result");
  row.dataset.busy = "true";
  result.dataset.state = "pending";
  result.textContent = "…";
  try {
    const response = await fetch(
      `api/fleet/${encodeURIComponent(host)}/${encodeURIComponent(camera)}/control/${encodeURIComponent(name)}`,
      { method: "POST", body: row.querySelector("input").value },
    );
    const outcome = await response.json();
    const ok = response.ok && outcome.ok;
    result.dataset.state = ok ? "applied" : "error";
    result.textContent = ok ? `set to ${outcome.value}` : outcome.error ?? outcome.message ?? "refused";
  } catch (e) {
    result.dataset.state = "error";
    result.textContent = String(e);
  } finally {
    row.dataset.busy = "false";
  }
}

showFleet();
setInterval(showFleet, FLEET_POLL_MS);

function showReadOnly() {
  const note = document.getElementById("read-only");
  note.hidden = operator;
  note.textContent = operator ? "" : `Read-only: your role is ${role}; changing controls needs an operator.`;
  document.getElementById("panel-reset").disabled = !operator;
}

// ---- controls panel ----

function openPanel(cameraId) {
  panelCamera = cameraId;
  const t = tiles.get(cameraId);
  document.getElementById("panel-title").textContent = `Controls: ${t?.status.name || cameraId}`;
  panel.hidden = false;
  panel.dataset.cameraId = cameraId;
  document.getElementById("panel-note").textContent = "";
  form.replaceChildren(Object.assign(document.createElement("p"), { textContent: "Loading…" }));
  loadControls(cameraId, true);
}

function loadControls(cameraId, focus) {
  request("get_controls", { camera_id: cameraId }, (answer) => {
    if (panelCamera !== cameraId) return;
    if (answer.controls === undefined) {
      form.replaceChildren(Object.assign(document.createElement("p"), { className: "note", textContent: answer.error }));
      return;
    }
    renderControls(cameraId, answer.controls);
    if (focus) form.querySelector("input, select, button")?.focus();
  });
}

document.getElementById("panel-close").addEventListener("click", () => {
  const id = panelCamera;
  panel.hidden = true;
  panelCamera = null;
  tiles.get(id)?.el.querySelector(".open-controls").focus();
});
document.getElementById("panel-reset").addEventListener("click", () => {
  const cameraId = panelCamera;
  const note = document.getElementById("panel-note");
  note.textContent = "Resetting…";
  request("reset_controls", { camera_id: cameraId }, (answer) => {
    for (const key of [...lastResults.keys()]) {
      if (key.startsWith(`${cameraId}/`)) lastResults.delete(key);
    }
    note.textContent = answer.ok
      ? "Controls are back to cameras.yaml; the changes made here are dropped."
      : answer.error;
    if (panelCamera === cameraId) loadControls(cameraId, false);
  });
});
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && !panel.hidden) document.getElementById("panel-close").click();
});

// A failed answer's code without its prefix, e.g. "OUT_OF_RANGE"; clients branch on it,
// never on the text.
function errorCode(answer) {
  return answer.code ? codec.enumName("camfleet.v1.ErrorCode", answer.code).replace("ERROR_CODE_", "") : "";
}

function controlKind(c) {
  return codec.enumName("camfleet.v1.ControlType", c.type).replace("CONTROL_TYPE_", "");
}

function renderControls(cameraId, controls) {
  const rows = controls.map((c) => controlRow(cameraId, c));
  form.replaceChildren(...rows);
}

function controlRow(cameraId, c) {
  const kind = controlKind(c);
  const row = document.createElement("div");
  row.className = "control";
  row.dataset.control = c.name;
  const id = `ctl-${c.name}`;
  const label = Object.assign(document.createElement("label"), { htmlFor: id, textContent: c.name.replaceAll("_", " ") });
  const result = Object.assign(document.createElement("p"), { className: "result" });
  result.setAttribute("role", "status");
  result.setAttribute("aria-live", "polite");
  const flags = [];
  if (c.read_only) flags.push("read-only");
  if (c.inactive) flags.push("inactive (an automatic mode is on)");
  if (c.disabled) flags.push("disabled");
  if (c.grabbed) flags.push("locked while streaming");
  if (kind === "UNSUPPORTED") flags.push(`not supported (${c.unsupported_type})`);
  const locked = !operator || c.read_only || c.disabled || kind === "UNSUPPORTED";
  const inputs = [];
  const line = document.createElement("div");
  line.className = "row";
  const apply = (value) => setControl(cameraId, c, value, row, result);

  if (kind === "INTEGER" || kind === "INTEGER64" || kind === "BITMASK") {
    const number = Object.assign(document.createElement("input"), { type: "number", id, value: c.value ?? c.default });
    if (kind !== "BITMASK") {
      const slider = Object.assign(document.createElement("input"), {
        type: "range", min: c.min, max: c.max, step: c.step || 1, value: c.value ?? c.default,
      });
      slider.setAttribute("aria-label", `${c.name.replaceAll("_", " ")} slider`);
      slider.addEventListener("input", () => (number.value = slider.value));
      slider.addEventListener("change", () => apply(Number(slider.value)));
      inputs.push(slider);
      line.append(slider);
      // Ranges are shown, not enforced here: the server checks and explains.
      number.setAttribute("aria-describedby", `${id}-range`);
    }
    number.addEventListener("change", () => apply(Number(number.value)));
    inputs.push(number);
    line.append(number);
    const range = Object.assign(document.createElement("span"), {
      id: `${id}-range`, className: "flags",
      textContent: kind === "BITMASK" ? `bits within 0x${c.max.toString(16)}` : `${c.min} to ${c.max}${c.step > 1 ? `, step ${c.step}` : ""}`,
    });
    line.append(range);
  } else if (kind === "BOOLEAN") {
    const box = Object.assign(document.createElement("input"), { type: "checkbox", id, checked: Boolean(c.value) });
    box.setAttribute("role", "switch");
    box.addEventListener("change", () => apply(box.checked ? 1 : 0));
    inputs.push(box);
    line.append(box);
  } else if (kind === "MENU" || kind === "INTEGER_MENU") {
    const select = Object.assign(document.createElement("select"), { id });
    for (const item of c.menu_items) {
      select.append(new Option(item.name, String(item.index), false, item.index === c.value));
    }
    select.addEventListener("change", () => apply(Number(select.value)));
    inputs.push(select);
    line.append(select);
  } else if (kind === "BUTTON") {
    const button = Object.assign(document.createElement("button"), { type: "button", id, textContent: "Press" });
    button.addEventListener("click", () => apply(1));
    inputs.push(button);
    line.append(button);
  } else {
    line.append(Object.assign(document.createElement("span"), { id, textContent: String(c.value ?? "") }));
  }
  for (const input of inputs) input.disabled = locked;
  row.append(label, line);
  if (flags.length) row.append(Object.assign(document.createElement("span"), { className: "flags", textContent: flags.join(", ") }));
  const last = lastResults.get(`${cameraId}/${c.name}`);
  if (last) Object.assign(result.dataset, { state: last.state, code: last.code });
  if (last) result.textContent = last.text;
  if (c.changed_by) {
    const at = new Date(Number(c.changed_at_unix_ms)).toLocaleString();
    row.append(Object.assign(document.createElement("span"), { className: "changed", textContent: `changed by ${c.changed_by} at ${at}` }));
  }
  row.append(result);
  return row;
}

function setControl(cameraId, c, value, row, result) {
  const show = (state, text, code = "") => {
    lastResults.set(`${cameraId}/${c.name}`, { state, text, code });
    const current = form.querySelector(`.control[data-control="${c.name}"] .result`) ?? result;
    current.dataset.state = state;
    current.dataset.code = code;
    current.textContent = text;
  };
  show("pending", `Setting ${value}…`);
  request("set_control", { camera_id: cameraId, control: c.name, value }, (answer) => {
    if (answer.ok) {
      show("applied", `Applied: ${answer.value ?? value}`);
      // The answer carries the control as the device now reports it: redraw its row,
      // keeping the focus where it was.
      const old = form.querySelector(`.control[data-control="${c.name}"]`);
      if (panelCamera === cameraId && answer.control && old) {
        const focused = document.activeElement?.id;
        old.replaceWith(controlRow(cameraId, answer.control));
        if (focused) document.getElementById(focused)?.focus();
      }
    } else {
      show("error", answer.error, errorCode(answer));
      if (errorCode(answer) === "NOT_PERMITTED") {
        operator = false;
        showReadOnly();
      }
    }
  });
}

preload();
connect();
