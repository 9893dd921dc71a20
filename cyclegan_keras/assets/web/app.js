// The page's logic: load LiteRT.js and the generator, translate the chosen photo on this device.
// Contract for automated checks: index.html?src=URL translates the image at URL on load, puts the
// result in <img id="output"> as a PNG data URL, and sets document.body.dataset.status to "done"
// (or "error: <message>"); dataset.backend and dataset.latencyMs say what ran and how long it took
// (with &repeat=N, the median of N runs), dataset.threads whether the threaded build runs.
// index.html?camera=1 starts the camera mode on load: dataset.status "camera", dataset.frames counts
// the translated frames and dataset.fps their rate; with &capture=N the N-th frame's model input and
// output go into <img id="input"> and <img id="output"> as PNG data URLs and dataset.captured is "true".
import { Tensor, isWebGPUSupported, loadAndCompile, loadLiteRt, supportsFeature } from "./litertjs/core/index.js";

const $ = (id) => document.getElementById(id);
// The smallest module that uses a SIMD instruction: browsers without WebAssembly SIMD reject it.
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0,
  10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

let model = null;
let meta = null;
let camera = null; // { stream, running } while the camera mode runs

function setStatus(status, message) {
  document.body.dataset.status = status;
  $("message").textContent = message;
}

function fail(error) {
  const text = error instanceof Error ? error.message : String(error);
  setStatus(`error: ${text}`, `Sorry: ${text}`);
}

async function compile(accelerator) {
  return loadAndCompile(new URL(meta.model, location.href).href, { accelerator });
}

async function start() {
  if (typeof WebAssembly !== "object" || !WebAssembly.validate(SIMD_PROBE)) {
    throw new Error("this browser cannot run the model: it lacks WebAssembly SIMD. Try a current Chrome, Edge, Firefox or Safari.");
  }
  meta = await (await fetch("model.json")).json();
  $("title").textContent = meta.title;
  // Threads need a cross-origin isolated page (hosts that send COOP/COEP headers) and relaxed SIMD;
  // elsewhere the single-threaded build runs.
  const threads = self.crossOriginIsolated === true && (await supportsFeature("relaxedSimd")) &&
    (await supportsFeature("threads"));
  await loadLiteRt(new URL("litertjs/wasm/", location.href).href, threads ? { threads: true } : {});
  document.body.dataset.threads = String(threads);
  let accelerator = "wasm";
  if (meta.webgpu && isWebGPUSupported()) {
    try {
      model = await compile("webgpu");
      accelerator = "webgpu";
    } catch (error) {
      console.warn("WebGPU failed, using WebAssembly:", error);
    }
  }
  if (model === null) model = await compile("wasm");
  document.body.dataset.backend = accelerator === "webgpu" ? "WebGPU" : "WASM/XNNPACK";
  $("photo").disabled = false;
  $("camera").disabled = !navigator.mediaDevices?.getUserMedia;
  setStatus("ready", `Ready (${document.body.dataset.backend}). Choose a photo or use the camera.`);
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.crossOrigin = "anonymous";
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("that file is not an image this browser can read"));
    image.src = url;
  });
}

// RGBA pixels of a square canvas -> the model's float32 input in [-1, 1].
function modelInput(rgba, size) {
  const pixels = new Float32Array(size * size * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    pixels[j] = rgba[i] / 127.5 - 1;
    pixels[j + 1] = rgba[i + 1] / 127.5 - 1;
    pixels[j + 2] = rgba[i + 2] / 127.5 - 1;
  }
  return pixels;
}

// One input through the model: its output values and the milliseconds the run took.
async function run(pixels, size) {
  const input = new Tensor(pixels, [1, size, size, 3]);
  const started = performance.now();
  const outputs = await model.run(input);
  const result = await outputs[0].moveTo("wasm");
  const values = result.toTypedArray();
  const ms = performance.now() - started;
  input.delete();
  result.delete();
  return { values, ms };
}

// The model's output values drawn into a context as pixels.
function draw(values, context, size) {
  const out = context.createImageData(size, size);
  for (let i = 0, j = 0; j < values.length; i += 4, j += 3) {
    for (let c = 0; c < 3; c++) out.data[i + c] = Math.min(255, Math.max(0, Math.round((values[j + c] + 1) * 127.5)));
    out.data[i + 3] = 255;
  }
  context.putImageData(out, 0, 0);
}

async function translate(url, repeat = 1) {
  setStatus("working", "Translating on this device…");
  const image = await loadImage(url);
  const size = meta.size;
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  // Any photo, however large, is scaled to the model's square input, as the official test script does.
  context.drawImage(image, 0, 0, size, size);
  $("input").src = canvas.toDataURL("image/png");
  const pixels = modelInput(context.getImageData(0, 0, size, size).data, size);
  const times = [];
  let values = null;
  for (let repeated = 0; repeated < repeat; repeated++) {
    const result = await run(pixels, size);
    values = result.values;
    times.push(result.ms);
  }
  const latency = times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
  draw(values, context, size);
  const png = canvas.toDataURL("image/png");
  $("output").src = png;
  $("download").href = png;
  $("download").hidden = false;
  document.body.dataset.latencyMs = latency.toFixed(1);
  $("timing").textContent = `${latency.toFixed(0)} ms on ${document.body.dataset.backend}, ${size}x${size} px`;
  setStatus("done", "Done.");
}

function stopCamera() {
  if (camera === null) return;
  camera.running = false;
  for (const track of camera.stream.getTracks()) track.stop();
  camera = null;
  $("camera").textContent = "Use the camera";
  setStatus("ready", "Camera stopped. Choose a photo or use the camera.");
}

// The camera translated live: each frame's centre square scaled to the model's size, through the
// model, drawn; the frames per second over the last second shown. Nothing leaves the device.
async function startCamera(captureAt = 0) {
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch (error) {
    throw new Error(`no camera this page may use (${error.name || error})`);
  }
  camera = { stream, running: true };
  const session = camera;
  const video = $("camera-video");
  video.srcObject = stream;
  await video.play();
  $("live-pair").hidden = false;
  $("camera").textContent = "Stop the camera";
  setStatus("camera", "Translating the camera on this device…");
  const size = meta.size;
  const grab = document.createElement("canvas");
  grab.width = grab.height = size;
  const grabbed = grab.getContext("2d", { willReadFrequently: true });
  const live = $("live");
  live.width = live.height = size;
  const shown = live.getContext("2d");
  let frames = 0;
  let since = performance.now();
  let recent = 0;
  while (session.running) {
    const side = Math.min(video.videoWidth, video.videoHeight);
    if (side > 0) {
      grabbed.drawImage(video, (video.videoWidth - side) / 2, (video.videoHeight - side) / 2, side, side, 0, 0, size, size);
      const { values } = await run(modelInput(grabbed.getImageData(0, 0, size, size).data, size), size);
      if (!session.running) break;
      draw(values, shown, size);
      frames += 1;
      recent += 1;
      document.body.dataset.frames = String(frames);
      const now = performance.now();
      if (now - since >= 1000) {
        const fps = (recent * 1000) / (now - since);
        document.body.dataset.fps = fps.toFixed(2);
        $("timing").textContent = `${fps.toFixed(1)} frames/s on ${document.body.dataset.backend}, ${size}x${size} px`;
        since = now;
        recent = 0;
      }
      if (frames === captureAt) {
        $("input").src = grab.toDataURL("image/png");
        $("output").src = live.toDataURL("image/png");
        document.body.dataset.captured = "true";
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 0)); // let the page draw
  }
}

$("photo").addEventListener("change", () => {
  const file = $("photo").files[0];
  stopCamera();
  if (file) translate(URL.createObjectURL(file)).catch(fail);
});

$("camera").addEventListener("click", () => {
  if (camera !== null) stopCamera();
  else startCamera().catch(fail);
});

start()
  .then(() => {
    const query = new URLSearchParams(location.search);
    if (query.get("camera")) return startCamera(Math.max(0, Number(query.get("capture")) || 0));
    if (query.get("src")) return translate(query.get("src"), Math.max(1, Number(query.get("repeat")) || 1));
  })
  .catch(fail);
