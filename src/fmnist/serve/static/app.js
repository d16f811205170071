// The fmnist page: send photos (drop, pick, paste) or a drawing to /predict and show what the
// model saw next to its probability for every class. Plain JavaScript, no external assets.
"use strict";

const $ = (id) => document.getElementById(id);
let classCount = 10;

async function loadModel() {
  try {
    const r = await fetch("/model");
    const m = await r.json();
    classCount = m.class_names.length;
    const acc = m.metrics && m.metrics.test_accuracy;
    $("model-line").textContent = `Model: ${m.name}` +
      (m.n_parameters ? ` (${m.n_parameters.toLocaleString("en")} parameters)` : "") +
      (typeof acc === "number" ? ` · test accuracy ${(acc * 100).toFixed(1)}%` : "") +
      ` · classes: ${m.class_names.join(", ")}`;
  } catch (e) {
    $("model-line").textContent = "The model information could not be loaded.";
  }
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

// POST the files as multipart; `originals` are object URLs shown beside the 28×28 result.
async function predictFiles(files, originals) {
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append("file", f, f.name || "pasted.png");
  showError("");
  document.body.classList.add("busy");
  try {
    const r = await fetch(`/predict?top_k=${classCount}`, { method: "POST", body: form });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      showError(`Could not score ${files.length > 1 ? "these images" : "this image"}: ` +
                (body.detail || `${r.status} ${r.statusText}`));
      return;
    }
    renderResults(body, originals);
  } catch (e) {
    showError(`The server did not answer (${e.message}).`);
  } finally {
    document.body.classList.remove("busy");
  }
}

function renderResults(body, originals) {
  const results = $("results");
  results.querySelectorAll(".result").forEach((el) => el.remove());
  $("placeholder").hidden = true;
  body.predictions.forEach((p, i) => results.appendChild(renderOne(p, originals[i], body)));
}

function pct(p) {
  return p >= 0.995 ? "99%+" : p < 0.005 ? "<1%" : `${Math.round(p * 100)}%`;
}

function renderOne(p, originalUrl, body) {
  const node = $("result-template").content.firstElementChild.cloneNode(true);
  const verdict = node.querySelector(".verdict");
  node.querySelector(".source").textContent = p.source;
  if (p.error) {  // this photo could not be read; the others in the request were still scored
    node.classList.add("failed");
    verdict.textContent = "Could not score this image";
    const content = node.querySelector(".result-body");
    content.replaceChildren();
    const detail = document.createElement("p");
    detail.className = "error-detail";
    detail.textContent = p.detail;
    content.appendChild(detail);
    return node;
  }
  if (p.low_confidence) {
    node.classList.add("unsure");
    verdict.textContent = p.message || `Not sure: could be ${p.top.slice(0, 2).map((t) => t.label).join(" or ")}`;
  } else {
    verdict.textContent = `${p.label} · ${pct(p.probability)}`;
  }
  node.dataset.label = p.label;
  node.querySelector(".preprocessed").src = `data:image/png;base64,${p.image_png}`;
  const orig = node.querySelector(".original");
  if (originalUrl) orig.src = originalUrl; else orig.remove();
  const bars = node.querySelector(".bars");
  for (const t of p.top) {
    const li = document.createElement("li");
    if (t.label === p.label) li.classList.add("top");
    li.innerHTML = '<span class="name"></span><span class="track"><span class="fill"></span></span><span class="val"></span>';
    li.querySelector(".name").textContent = t.label;
    li.querySelector(".fill").style.width = `${(t.probability * 100).toFixed(1)}%`;
    li.querySelector(".val").textContent = pct(t.probability);
    bars.appendChild(li);
  }
  const tm = body.timing;
  node.querySelector(".timing").textContent =
    `${body.model} · ${tm.total_ms.toFixed(0)} ms (model ${tm.inference_ms.toFixed(1)} ms)`;
  return node;
}

function imageFiles(list) {
  return Array.from(list || []).filter((f) => f.type.startsWith("image/") || f.type === "");
}

function sendFiles(files) {
  if (!files.length) {
    showError("That was not an image file.");
    return;
  }
  predictFiles(files, files.map((f) => URL.createObjectURL(f)));
}

// --- photo: picker, drag and drop, paste ---
function setupPhoto() {
  const zone = $("dropzone");
  $("file-input").addEventListener("change", (e) => {
    sendFiles(imageFiles(e.target.files));
    e.target.value = "";
  });
  zone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file-input").click(); }
  });
  ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (e) => {
    e.preventDefault();
    zone.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, () => zone.classList.remove("over")));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    sendFiles(imageFiles(e.dataTransfer.files));
  });
  document.addEventListener("paste", (e) => {
    const files = Array.from(e.clipboardData.items)
      .filter((it) => it.kind === "file" && it.type.startsWith("image/"))
      .map((it) => it.getAsFile());
    if (files.length) { e.preventDefault(); selectTab("photo"); sendFiles(files); }
  });
}

// --- drawing canvas: white on black, like the training images; scored after each stroke ---
function setupCanvas() {
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height); };
  clear();
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 22;
  ctx.lineCap = ctx.lineJoin = "round";
  let drawing = false, dirty = false;
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
  };
  canvas.addEventListener("pointerdown", (e) => {
    drawing = true; dirty = true;
    canvas.setPointerCapture(e.pointerId);
    const [x, y] = at(e);
    ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x, y); ctx.stroke();
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const [x, y] = at(e);
    ctx.lineTo(x, y); ctx.stroke();
  });
  const end = () => {
    if (!drawing) return;
    drawing = false;
    if (dirty) canvas.toBlob((blob) => predictFiles([new File([blob], "drawing.png", { type: "image/png" })],
                                                     [canvas.toDataURL("image/png")]), "image/png");
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  $("clear-btn").addEventListener("click", () => { clear(); dirty = false; });
}

function selectTab(name) {
  for (const t of ["photo", "draw"]) {
    $(`tab-${t}`).setAttribute("aria-selected", String(t === name));
    $(`panel-${t}`).hidden = t !== name;
  }
}

$("tab-photo").addEventListener("click", () => selectTab("photo"));
$("tab-draw").addEventListener("click", () => selectTab("draw"));
setupPhoto();
setupCanvas();
loadModel();
