// The page of `mmsd serve`: upload a video, follow its job, show the result. No library, no network
// beyond this server (mmsd/web/app.py documents the endpoints).
"use strict";

const $ = (id) => document.getElementById(id);
const POLL_MS = 400;
const DRIFT_S = 0.08; // a video further than this from the leading one is moved to it

let config = null;
let lastFile = null;
let player = null;
let generation = 0; // counts the uploads started: an older upload's answers are ignored
let currentJob = null; // the job the page follows, cancelled when another file is dropped
let upload = null; // the upload under way, stopped likewise

async function init() {
  config = await (await fetch("/api/config")).json();
  for (const model of config.models) {
    $("model").add(new Option(model.name, model.name, false, model.name === config.default_model));
  }
  for (const name of config.emotions) $("emotion").add(new Option(name, name));
  $("crf").value = config.default_crf;
  $("limit").textContent = `at most ${formatMB(config.max_bytes)}`;
  showPurpose();
  showCrf();
  $("model").addEventListener("change", showPurpose);
  $("crf").addEventListener("input", showCrf);
  $("file").addEventListener("change", () => { if ($("file").files.length) start($("file").files[0]); });
  $("again").addEventListener("click", () => { if (lastFile) start(lastFile); });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) start(event.dataTransfer.files[0]);
  });
  for (const id of ["wipe-left", "wipe-right"]) $(id).addEventListener("change", showWipe);
  $("wipe-pos").addEventListener("input", moveWipe);
}

function showPurpose() {
  const model = config.models.find((m) => m.name === $("model").value);
  $("model-purpose").textContent = model ? model.purpose : "";
}

function showCrf() { $("crf-value").textContent = $("crf").value; }

function formatMB(bytes) { return `${(bytes / 1e6).toLocaleString(undefined, {maximumFractionDigits: 1})} MB`; }

function showError(message) {
  $("progress").hidden = true;
  $("error").textContent = message;
  $("error").hidden = false;
}

function showStage(text, fraction) {
  $("progress").hidden = false;
  $("stage").textContent = text;
  if (fraction === null) $("bar").removeAttribute("value");
  else $("bar").value = fraction;
}

function start(file) {
  const mine = ++generation;
  lastFile = file;
  if (currentJob) fetch(`/api/jobs/${currentJob}`, {method: "DELETE"}).catch(() => {});
  if (upload) upload.abort();
  currentJob = upload = null;
  $("again").hidden = false;
  $("error").hidden = true;
  $("result").hidden = true;
  if (player) player.stop();
  if (file.size > config.max_bytes) {
    showError(`${file.name} is ${formatMB(file.size)}, over this server's limit of ${formatMB(config.max_bytes)}`);
    return;
  }
  const query = new URLSearchParams({
    name: file.name, kind: $("kind").value, crf: $("crf").value, emotion: $("emotion").value, model: $("model").value,
  });
  const request = upload = new XMLHttpRequest();
  request.open("POST", `/api/jobs?${query}`);
  request.upload.onprogress = (event) => {
    if (event.lengthComputable) showStage(`uploading ${file.name}`, event.loaded / event.total);
  };
  request.onload = () => {
    if (mine !== generation) return;
    upload = null;
    let body = {};
    try { body = JSON.parse(request.responseText); } catch (error) { /* an empty or plain-text answer */ }
    if (request.status === 202) follow(body.id, file.name, mine);
    else showError(body.error || `the upload failed (HTTP ${request.status})`);
  };
  request.onerror = () => {
    if (mine === generation) showError("the upload failed: the server did not answer (is `mmsd serve` still running?)");
  };
  showStage(`uploading ${file.name}`, 0);
  request.send(file);
}

function follow(id, name, mine) {
  currentJob = id;
  let stage = null;
  let stageStart = 0;
  const poll = async () => {
    let status;
    try {
      const answer = await fetch(`/api/jobs/${id}`);
      status = await answer.json();
      if (!answer.ok) status = {state: "failed", message: status.error};
    } catch (error) {
      status = {state: "failed", message: "lost the server (is `mmsd serve` still running?)"};
    }
    if (mine !== generation) return; // another upload started since
    if (status.state === "done") {
      currentJob = null;
      $("progress").hidden = true;
      showResult(status.result, name);
      return;
    }
    if (status.state === "failed" || status.state === "expired") {
      currentJob = null;
      showError(status.message);
      return;
    }
    if (status.state === "queued") {
      showStage(`waiting: ${status.ahead} upload${status.ahead === 1 ? "" : "s"} ahead of this one`, null);
    } else if (status.stage) {
      if (status.stage !== stage) { stage = status.stage; stageStart = performance.now(); }
      let text = status.stage;
      let fraction = null;
      if (status.total) {
        fraction = Math.min(1, status.done / status.total);
        text += `: frame ${status.done} of ${status.total}`;
        const seconds = (performance.now() - stageStart) / 1000;
        if (status.done > 0 && seconds > 2) {
          text += `, about ${Math.ceil(seconds * (status.total - status.done) / status.done)} s left`;
        }
      }
      showStage(text, fraction);
    }
    setTimeout(poll, POLL_MS);
  };
  showStage("waiting for the server", null);
  poll();
}

function number(value, digits) {
  return value.toLocaleString(undefined, {minimumFractionDigits: digits, maximumFractionDigits: digits});
}

function kbps(bitsPerSecond) { return `${number(bitsPerSecond / 1000, 1)} kbit/s`; }

function row(cells) {
  const tr = document.createElement("tr");
  cells.forEach((text, i) => {
    const cell = document.createElement(i === 0 ? "th" : "td");
    cell.textContent = text;
    tr.append(cell);
  });
  return tr;
}

function showResult(result, name) {
  const original = "original" in result.files;
  const sent = `${result.sent_width}x${result.sent_height}`;
  $("summary").textContent = (original
    ? `${name}: an original (${result.reason}), sent at ${sent} and restored to ${result.width}x${result.height}`
    : `${name}: taken as already sent (${result.reason}), restored from ${sent} to ${result.width}x${result.height}`)
    + ` by ${result.model}; ${result.frames} frames at ${result.rate}; emotion ${result.emotion}.`;
  const warnings = $("warnings");
  const items = result.warnings.map((text) => Object.assign(document.createElement("li"), {textContent: text}));
  warnings.replaceChildren(...items);

  const bitrates = $("bitrates").tBodies[0];
  bitrates.replaceChildren();
  if (original) bitrates.append(row(["Original", kbps(result.bitrates.original_video), "", ""]));
  bitrates.append(row([`Sent, ${sent}`, kbps(result.bitrates.video), kbps(result.bitrates.audio),
    `${number(result.bitrates.side, 1)} bit/s`]));
  const scores = $("scores");
  scores.tBodies[0].replaceChildren();
  scores.hidden = !original;
  const base = result.scores.bicubic;
  for (const [label, score] of Object.entries(result.scores)) {
    const psnr = score.psnr === null ? "identical" : `${number(score.psnr, 2)} dB`;
    const gain = label !== "bicubic" && score.psnr !== null && base.psnr !== null
      ? ` (${score.psnr >= base.psnr ? "+" : ""}${number(score.psnr - base.psnr, 2)})` : "";
    scores.tBodies[0].append(row([label === "bicubic" ? "Bicubic" : label, psnr + gain, number(score.ssim, 4)]));
  }
  $("region").textContent = original
    ? `Against the original, on ${result.measured} frames: ${result.region}.`
    : "No original was given, so there is nothing to measure against.";

  $("download").href = `${result.urls.restored}?download=1`;
  $("download").setAttribute("download", result.download_name);
  $("download").textContent = `Download the restored video (${result.download_name})`;
  $("sent-link").hidden = !original;
  if (original) $("download-sent").href = `${result.urls.sent}?download=1`;

  const columns = [];
  if (original) columns.push({role: "original", label: "Original"});
  columns.push({role: "bicubic", label: "Bicubic"}, {role: "restored", label: result.model});
  player = new Player(columns, result.urls);
  for (const [id, pick] of [["wipe-left", "bicubic"], ["wipe-right", "restored"]]) {
    $(id).replaceChildren(...columns.map((c) => new Option(c.label, c.role, false, c.role === pick)));
  }
  $("wipe-note").textContent = `Frame ${result.still + 1} of ${result.frames}, at ${result.width}x${result.height}.`;
  showWipe();
  $("result").hidden = false;
}

function showWipe() {
  const urls = player.urls;
  $("wipe-left-img").src = urls[`frame-${$("wipe-left").value}`];
  $("wipe-right-img").src = urls[`frame-${$("wipe-right").value}`];
  moveWipe();
}

function moveWipe() {
  const percent = $("wipe-pos").value / 10;
  $("wipe-left-img").style.clipPath = `inset(0 ${100 - percent}% 0 0)`;
  $("wipe-line").style.left = `${percent}%`;
}

// The videos play together: the restored one leads, the others follow it within DRIFT_S.
class Player {
  constructor(columns, urls) {
    this.urls = urls;
    this.videos = {};
    const box = $("videos");
    box.replaceChildren();
    box.style.setProperty("--columns", columns.length);
    for (const column of columns) {
      const video = document.createElement("video");
      video.src = urls[column.role];
      video.preload = "auto";
      video.playsInline = true;
      video.dataset.role = column.role;
      video.addEventListener("click", () => this.toggle());
      const figure = document.createElement("figure");
      const caption = document.createElement("figcaption");
      caption.textContent = column.label;
      figure.append(video, caption);
      box.append(figure);
      this.videos[column.role] = video;
    }
    this.lead = this.videos.restored;
    $("sound").replaceChildren(
      ...columns.filter((c) => c.role !== "bicubic").reverse().map((c) => new Option(c.label, c.role)),
      new Option("off", "off"));
    this.listeners = [
      [$("play"), "click", () => this.toggle()],
      [$("seek"), "input", () => this.seek($("seek").value / 1000 * this.lead.duration)],
      [$("sound"), "change", () => this.sound()],
      [$("loop"), "change", () => { this.lead.loop = $("loop").checked; }],
      [this.lead, "timeupdate", () => this.showTime()],
      [this.lead, "loadedmetadata", () => this.showTime()],
      [this.lead, "play", () => { $("play").textContent = "Pause"; }],
      [this.lead, "pause", () => { $("play").textContent = "Play"; this.align(); }],
    ];
    for (const [target, kind, handler] of this.listeners) target.addEventListener(kind, handler);
    this.lead.loop = $("loop").checked;
    this.sound();
    this.frame = requestAnimationFrame(() => this.follow());
  }

  get others() { return Object.values(this.videos).filter((video) => video !== this.lead); }

  toggle() {
    if (this.lead.paused) {
      for (const video of Object.values(this.videos)) video.play().catch(() => {});
    } else {
      for (const video of Object.values(this.videos)) video.pause();
    }
  }

  seek(seconds) {
    if (!Number.isFinite(seconds)) return;
    for (const video of Object.values(this.videos)) video.currentTime = seconds;
  }

  align() { for (const video of this.others) video.currentTime = this.lead.currentTime; }

  sound() {
    const source = $("sound").value;
    for (const [role, video] of Object.entries(this.videos)) video.muted = role !== source;
  }

  follow() {
    if (!this.lead.paused) {
      for (const video of this.others) {
        if (Math.abs(video.currentTime - this.lead.currentTime) > DRIFT_S) video.currentTime = this.lead.currentTime;
        if (video.paused) video.play().catch(() => {});
      }
    }
    this.frame = requestAnimationFrame(() => this.follow());
  }

  showTime() {
    const duration = this.lead.duration || 0;
    $("time").textContent = `${number(this.lead.currentTime, 1)} / ${number(duration, 1)} s`;
    if (duration) $("seek").value = Math.round(this.lead.currentTime / duration * 1000);
  }

  stop() {
    cancelAnimationFrame(this.frame);
    for (const [target, kind, handler] of this.listeners) target.removeEventListener(kind, handler);
    for (const video of Object.values(this.videos)) { video.pause(); video.removeAttribute("src"); video.load(); }
  }
}

document.addEventListener("DOMContentLoaded", init);
