/* Face ID admin console: plain JavaScript, no build step, no third-party code.
 *
 * Security rules kept throughout this file:
 *  - the admin key lives in sessionStorage (this tab only) and travels only as the X-API-Key header of fetch();
 *    no cookie (so no CSRF surface), nothing secret in a URL;
 *  - every value that comes from the API or the user is rendered with textContent / attributes, never parsed as
 *    HTML (no HTML-string sink appears in this file: a test checks); the page's CSP allows no inline script;
 *  - images that need the key (stored face crops) are fetched with it and shown as blob: URLs, revoked when the
 *    view changes or on sign-out.
 */
"use strict";

(function () {
  const KEY_NAME = "faceid.admin.key";
  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- small DOM helpers

  /** el("a", {href: "#", class: "x"}, "text", child) — text children become text nodes, never HTML. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    node.replaceChildren();
    return node;
  }

  function setText(id, text) {
    $(id).textContent = text === null || text === undefined ? "" : String(text);
  }

  function fmtDate(iso) {
    if (!iso) return "";
    return String(iso).slice(0, 16).replace("T", " ");
  }

  function fmtScore(x) {
    return typeof x === "number" ? x.toFixed(3) : "–";
  }

  let toastTimer = null;
  function toast(text) {
    const box = $("toast");
    box.textContent = text;
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.hidden = true; }, 5000);
  }

  // ---------------------------------------------------------------- the API

  class ApiError extends Error {
    constructor(status, code, message, details, retryAfter) {
      super(message);
      this.status = status;
      this.code = code;
      this.details = details || {};
      this.retryAfter = retryAfter;
    }
  }

  function key() {
    return sessionStorage.getItem(KEY_NAME);
  }

  /** One request with the key. Resolves to the parsed JSON (or a Blob with {blob: true});
   * rejects with ApiError carrying the service's error code, message and details. */
  async function api(path, { method = "GET", json, form, blob = false, withKey } = {}) {
    const headers = { "X-API-Key": withKey !== undefined ? withKey : key() || "" };
    let body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    } else if (form !== undefined) {
      body = form;
    }
    let response;
    try {
      response = await fetch(path, { method, headers, body, credentials: "omit", cache: "no-store" });
    } catch (err) {
      throw new ApiError(0, "network", "The service cannot be reached. Check that it is running.", {});
    }
    if (response.ok) return blob ? response.blob() : response.json();
    let error = {};
    try {
      error = (await response.json()).error || {};
    } catch (err) { /* not JSON: keep the status */ }
    const failure = new ApiError(response.status, error.code || "http_" + response.status,
      error.message || response.statusText, error.details, response.headers.get("Retry-After"));
    if (response.status === 401 && withKey === undefined && key()) {
      signOut("Your key is no longer accepted. Sign in again.");
    }
    throw failure;
  }

  const CHECK_WORDS = {
    probability: "face confidence",
    face_size: "face size (px)",
    blur: "sharpness",
    pose_yaw: "turned sideways (yaw)",
    pose_pitch: "tilted up or down (pitch)",
    pose_roll: "head tilt (roll, °)",
  };
  const CHECK_SHORT = { probability: "confidence", face_size: "size", blur: "sharpness", pose_yaw: "yaw",
    pose_pitch: "pitch", pose_roll: "roll" };
  const QUALITY_KEYS = { probability: "probability", face_size: "size", blur: "blur",
    pose_yaw: "yaw", pose_pitch: "pitch", pose_roll: "roll" };

  function limitWords(check, limit) {
    if (Array.isArray(limit)) return "between " + limit[0] + " and " + limit[1];
    if (check === "pose_yaw" || check === "pose_roll") return "at most ±" + limit;
    return "at least " + limit;
  }

  function failedWords(failed) {
    return (failed || []).map((f) => (CHECK_WORDS[f.check] || f.check) + " " + f.value + " (" +
      limitWords(f.check, f.limit) + ")").join("; ");
  }

  /** An error in words, for the person reading the console. */
  function describe(err) {
    const d = err.details || {};
    switch (err.code) {
      case "network": return err.message;
      case "no_face": return "No face was found in this photo.";
      case "multiple_faces":
        return (d.faces || "Several") + " faces were found: an enrollment photo must show exactly one person.";
      case "low_quality": return "The face is not good enough to enroll: " + failedWords(d.failed) + ".";
      case "duplicate_face":
        return "This face already belongs to another person" +
          (d.person_id ? " (" + d.person_id + (d.similarity ? ", similarity " + fmtScore(d.similarity) : "") + ")" : "") +
          ".";
      case "face_mismatch": return "This face does not match the person (an admin may accept it anyway).";
      case "person_exists": return "A person with id “" + (d.person_id || "") + "” already exists.";
      case "person_not_found": return "There is no person with this id.";
      case "face_not_found": return "That face no longer exists.";
      case "invalid_image": return "This file is not a readable image (corrupt, truncated or empty).";
      case "unsupported_media_type": return "This image format is not supported.";
      case "payload_too_large": return "This photo is too large.";
      case "rate_limited":
        return "Too many requests: wait " + (err.retryAfter || "a few") + " seconds and try again.";
      case "unauthorized": return "This key was not accepted. Check it and try again.";
      case "forbidden": return "This key may not do that: the console needs an admin key.";
      case "store_unavailable": return "The face store is unavailable right now. Try again shortly.";
      default: return err.message || "Something went wrong (" + err.code + ").";
    }
  }

  // ---------------------------------------------------------------- images with the key (blob: URLs)

  let blobUrls = [];
  function track(url) {
    blobUrls.push(url);
    return url;
  }
  function revokeAll() {
    for (const url of blobUrls) URL.revokeObjectURL(url);
    blobUrls = [];
  }

  let queue = Promise.resolve();
  const running = [];
  /** Fetch a stored crop with the key, at most 4 at a time, and show it in img. */
  function loadCrop(img, cropUrl, label) {
    img.alt = label || "";
    const task = async () => {
      try {
        const data = await api(cropUrl, { blob: true });
        if (img.isConnected) {
          img.src = track(URL.createObjectURL(data));
          img.dataset.crop = cropUrl;
        }
      } catch (err) {
        img.classList.add("missing");
        img.alt = label ? label + " (no thumbnail)" : "no thumbnail";
      }
    };
    const start = () => {
      const p = task().finally(() => running.splice(running.indexOf(p), 1));
      running.push(p);
      return p;
    };
    queue = queue.then(async () => {
      while (running.length >= 4) await Promise.race(running);
      start();
    });
  }

  /** A photo picked by the user, drawn on a canvas with the faces the service found. */
  async function drawPhoto(canvas, file, faces, imageSize) {
    const url = track(URL.createObjectURL(file));
    const img = new Image();
    img.decoding = "async";
    img.src = url;
    try {
      await img.decode();
    } catch (err) {
      canvas.replaceWith(el("div", { class: "no-preview" }, "No preview for this format (" + (file.type || file.name) + ")"));
      return false;
    }
    const maxSide = 900;
    const ratio = Math.min(1, maxSide / Math.max(img.naturalWidth, img.naturalHeight));
    canvas.width = Math.round(img.naturalWidth * ratio);
    canvas.height = Math.round(img.naturalHeight * ratio);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    if (faces && faces.length) {
      const scale = imageSize && imageSize.width ? canvas.width / imageSize.width : ratio;
      const line = Math.max(2, Math.round(Math.max(canvas.width, canvas.height) / 180));
      faces.forEach((f) => {
        const b = f.box;
        ctx.lineWidth = f.emphasis ? line * 1.5 : line;
        ctx.strokeStyle = f.color || "#4f46e5";
        ctx.setLineDash(f.dashed ? [line * 3, line * 2] : []);
        ctx.strokeRect(b.x * scale, b.y * scale, b.width * scale, b.height * scale);
        ctx.setLineDash([]);
        if (f.landmarks) {
          ctx.fillStyle = f.color || "#4f46e5";
          for (const point of Object.values(f.landmarks)) {
            ctx.beginPath();
            ctx.arc(point[0] * scale, point[1] * scale, line * 1.3, 0, 2 * Math.PI);
            ctx.fill();
          }
        }
        if (f.label) {
          const size = Math.max(12, Math.round(Math.max(canvas.width, canvas.height) / 30));
          ctx.font = "600 " + size + "px system-ui, sans-serif";
          const w = ctx.measureText(f.label).width + size * 0.6;
          const x = b.x * scale;
          const y = Math.max(0, b.y * scale - size * 1.4);
          ctx.fillStyle = f.color || "#4f46e5";
          ctx.fillRect(x, y, w, size * 1.4);
          ctx.fillStyle = "#fff";
          ctx.fillText(f.label, x + size * 0.3, y + size * 1.05);
        }
      });
    }
    return true;
  }

  // ---------------------------------------------------------------- sign in / out, status strip

  async function refreshStatus() {
    try {
      const s = await api("/v1/status");
      setText("st-model", s.model);
      setText("st-gallery", s.gallery_size + (s.gallery_size === 1 ? " person" : " people"));
      setText("st-verify", fmtScore(s.thresholds.verify));
      setText("st-identify", fmtScore(s.thresholds.identify));
      setText("st-records", s.store.records);
      setText("st-index", s.store.index);
      setText("st-version", s.version);
      setText("st-ready", s.ready ? "ready" : "not ready");
      $("st-ready").className = "pill " + (s.ready ? "ok" : "bad");
      $("status").hidden = false;
      return s;
    } catch (err) {
      return null;
    }
  }

  async function signIn(event) {
    event.preventDefault();
    const input = $("signin-key");
    const candidate = input.value.trim();
    setText("signin-error", "");
    if (!candidate) {
      setText("signin-error", "Paste an admin API key.");
      input.focus();
      return;
    }
    try {
      await api("/v1/status", { withKey: candidate });
    } catch (err) {
      setText("signin-error", err.code === "forbidden"
        ? "This is a client key: the console needs an admin key." : describe(err));
      input.setAttribute("aria-invalid", "true");
      input.select();
      return;
    }
    input.value = "";
    input.removeAttribute("aria-invalid");
    sessionStorage.setItem(KEY_NAME, candidate);
    await refreshStatus();
    if (!location.hash || location.hash === "#/signin") location.hash = "#/people";
    else route();
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY_NAME);
    clearTimeout(imports.timer);
    revokeAll();
    resetEnroll();
    for (const id of ["verify-result", "identify-result", "people-rows", "person-faces", "imports-rows"]) clear($(id));
    $("status").hidden = true;
    $("nav").hidden = true;
    $("signout").hidden = true;
    setText("signin-error", typeof message === "string" ? message : "");
    show("signin");
    history.replaceState(null, "", "#/signin");
    $("signin-key").focus();
  }

  // ---------------------------------------------------------------- routing

  function show(view) {
    for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== "view-" + view;
    for (const link of document.querySelectorAll("#nav a")) {
      if (link.dataset.view === view || (view === "person" && link.dataset.view === "people")) {
        link.setAttribute("aria-current", "page");
      } else link.removeAttribute("aria-current");
    }
  }

  function route() {
    if (!key()) {
      signOut();
      return;
    }
    $("nav").hidden = false;
    $("signout").hidden = false;
    const [hash, query] = location.hash.replace(/^#\/?/, "").split("?");
    const [view, ...rest] = hash.split("/");
    const arg = rest.length ? decodeURIComponent(rest.join("/")) : null;
    revokeAll();
    clearTimeout(imports.timer);
    if (view === "person" && arg) {
      show("person");
      loadPerson(arg);
    } else if (view === "imports") {
      show("imports");
      loadImports();
    } else if (view === "enroll") {
      show("enroll");
      $("enroll-name").focus();
    } else if (view === "try") {
      show("try");
      const params = new URLSearchParams(query || "");
      if (params.get("person")) $("verify-person").value = params.get("person");
    } else {
      show("people");
      if (view !== "people") history.replaceState(null, "", "#/people");
      loadPeople();
    }
    $("main").focus({ preventScroll: true });
  }

  // ---------------------------------------------------------------- people

  const people = { q: "", cursors: [null], page: 0, size: 20, asked: 0 };

  async function loadPeople() {
    const rows = $("people-rows");
    const cursor = people.cursors[people.page];
    const params = new URLSearchParams({ limit: String(people.size) });
    if (people.q) params.set("q", people.q);
    if (cursor) params.set("cursor", cursor);
    setText("people-message", "Loading…");
    const asked = ++people.asked;
    let page;
    try {
      page = await api("/v1/persons?" + params);
    } catch (err) {
      if (asked === people.asked) setText("people-message", describe(err));
      return;
    }
    if (asked !== people.asked) return;  // a newer search or page was asked for meanwhile
    clear(rows);
    setText("people-total", page.total);
    const first = people.page * people.size + 1;
    setText("page-info", page.items.length
      ? first + "–" + (first + page.items.length - 1) + " of " + page.total : "");
    setText("people-message", page.items.length ? "" :
      people.q ? "Nobody’s name contains “" + people.q + "”." : "Nobody is enrolled yet.");
    for (const p of page.items) {
      const href = "#/person/" + encodeURIComponent(p.id);
      const img = el("img", { class: "avatar", width: 48, height: 48, alt: "" });
      rows.append(el("tr", { "data-person-id": p.id },
        el("td", {}, img),
        el("td", {}, el("a", { href, class: "name" }, p.name)),
        el("td", {}, el("code", {}, p.id)),
        el("td", { class: "num" }, p.face_count),
        el("td", { class: "muted" }, fmtDate(p.created_at))));
      // The list carries no face ids: the person's first face gives the thumbnail.
      api("/v1/persons/" + encodeURIComponent(p.id)).then((full) => {
        const face = full.faces.find((f) => f.crop_url);
        if (face) loadCrop(img, face.crop_url, "Face of " + p.name);
      }).catch(() => img.classList.add("missing"));
    }
    people.next = page.next_cursor;
    $("page-prev").disabled = people.page === 0;
    $("page-next").disabled = !page.next_cursor;
  }

  // ---------------------------------------------------------------- imports

  // A running import reports every 5 s; silent for this long, it was stopped without a word (kill -9, a crash).
  const IMPORT_QUIET_S = 30;
  const imports = { timer: null, asked: 0 };

  function fmtSeconds(s) {
    if (typeof s !== "number") return "–";
    if (s < 90) return Math.round(s) + " s";
    if (s < 5400) return Math.round(s / 60) + " min";
    return (s / 3600).toFixed(1) + " h";
  }

  /** The recent runs, asked again every 3 s while this view is shown (route() stops it on leaving). */
  async function loadImports() {
    clearTimeout(imports.timer);
    const asked = ++imports.asked;
    let page = null;
    try {
      page = await api("/v1/imports?limit=10");
    } catch (err) {
      if (asked === imports.asked) {
        setText("imports-message", err.code === "not_found"
          ? "Import progress is kept in the audit table, which is off on this service (audit_table = false)."
          : describe(err));
      }
    }
    if (asked !== imports.asked || $("view-imports").hidden) return;
    if (page) {
      const rows = clear($("imports-rows"));
      setText("imports-message", page.items.length ? "" : "No import has reported yet.");
      for (const run of page.items) {
        const stalled = run.state === "running" && run.quiet_s > IMPORT_QUIET_S;
        const state = stalled ? "no report for " + fmtSeconds(run.quiet_s) : run.state;
        const percent = run.total ? Math.floor((100 * run.done) / run.total) : 100;
        rows.append(el("tr", { "data-run-id": run.run_id },
          el("td", {}, el("code", {}, run.source || run.run_id)),
          el("td", { class: "state" + (stalled ? " stalled" : "") }, state),
          el("td", {}, el("progress", { max: run.total || 1, value: run.total ? run.done : 1,
            "aria-label": percent + "% of " + (run.source || "the import") }),
          el("span", { class: "done" }, run.done + " / " + run.total), el("span", { class: "muted" }, " " + percent + "%")),
          el("td", { class: "num" }, run.enrolled),
          el("td", { class: "num" }, run.added),
          el("td", { class: "num" }, run.already_there),
          el("td", { class: "num" }, run.rejected + run.not_enrolled),
          el("td", { class: "num" }, typeof run.photos_per_s === "number" ? run.photos_per_s.toFixed(1) + "/s" : "–"),
          el("td", { class: "num" }, run.state === "running" && !stalled ? fmtSeconds(run.eta_s) : "–"),
          el("td", { class: "muted" }, fmtDate(run.updated_at))));
      }
    }
    imports.timer = setTimeout(loadImports, 3000);
  }

  // ---------------------------------------------------------------- one person

  let current = null;
  let personAsked = 0;

  const QUALITY_SHOWN = [["probability", "confidence"], ["size", "size"], ["blur", "sharpness"],
    ["yaw", "yaw"], ["pitch", "pitch"], ["roll", "roll"]];

  async function loadPerson(id) {
    if (!current || current.id !== id) {  // never show someone else's page while this one loads
      current = null;
      for (const field of ["person-name", "person-crumb", "person-id", "person-dates", "person-face-count"]) {
        setText(field, "");
      }
      clear($("person-faces"));
      $("person-avatar").removeAttribute("src");
    }
    setText("person-message", "Loading…");
    const asked = ++personAsked;
    let data;
    try {
      data = await api("/v1/persons/" + encodeURIComponent(id));
      if (asked !== personAsked) return;  // another person was asked for meanwhile
    } catch (err) {
      if (asked !== personAsked) return;
      current = null;
      setText("person-name", "Not found");
      setText("person-message", describe(err));
      clear($("person-faces"));
      return;
    }
    setText("person-message", "");
    renderPerson(data);
  }

  function renderPerson(data) {
    const p = data.person;
    current = p;
    setText("person-name", p.name);
    setText("person-crumb", p.name);
    setText("person-id", p.id);
    setText("person-dates", "created " + fmtDate(p.created_at) + " UTC" +
      (p.updated_at && p.updated_at !== p.created_at ? " · updated " + fmtDate(p.updated_at) + " UTC" : ""));
    setText("person-face-count", p.face_count);
    $("person-verify").href = "#/try?person=" + encodeURIComponent(p.id);
    setText("erase-name", p.name);
    setText("erase-name-2", p.name);
    $("erase-confirm").value = "";
    $("erase-submit").disabled = true;
    setText("erase-error", "");
    $("edit-name").value = p.name;
    $("edit-metadata").value = Object.keys(p.metadata || {}).length ? JSON.stringify(p.metadata, null, 2) : "";
    setText("edit-error", "");
    setText("edit-saved", "");
    const avatar = $("person-avatar");
    avatar.removeAttribute("src");
    const list = clear($("person-faces"));
    data.faces.forEach((f, i) => {
      const img = el("img", { class: "crop", width: 160, height: 160, alt: "" });
      if (f.crop_url) loadCrop(img, f.crop_url, "Face " + (i + 1) + " of " + p.name);
      else img.classList.add("missing");
      if (i === 0 && f.crop_url) loadCrop(avatar, f.crop_url, "");
      const q = f.quality || {};
      const stats = el("dl", { class: "quality" },
        QUALITY_SHOWN.filter(([k]) => q[k] !== undefined).map(([k, label]) =>
          el("div", {}, el("dt", {}, label), el("dd", {}, String(q[k])))));
      const remove = el("button", {
        type: "button", class: "ghost small", "data-face-id": f.id,
        disabled: data.faces.length <= 1, title: data.faces.length <= 1 ? "A person keeps at least one face" : null,
        onclick: () => deleteFace(p, f, i + 1),
      }, "Delete face");
      list.append(el("li", { class: "face card", "data-face-id": f.id }, img,
        el("div", { class: "face-meta" },
          el("p", { class: "muted small" }, "Face " + (i + 1) + " · " + fmtDate(f.created_at)),
          stats, remove)));
    });
  }

  async function deleteFace(p, face, number) {
    if (!window.confirm("Delete face " + number + " of " + p.name + "?")) return;
    try {
      const out = await api("/v1/persons/" + encodeURIComponent(p.id) + "/faces/" + encodeURIComponent(face.id),
        { method: "DELETE" });
      toast("Deleted face " + number + " of " + out.person.name + ".");
      revokeAll();
      loadPerson(p.id);
    } catch (err) {
      setText("person-message", describe(err));
    }
  }

  async function saveEdit(event) {
    event.preventDefault();
    if (!current) return;
    setText("edit-error", "");
    setText("edit-saved", "");
    const name = $("edit-name").value.trim();
    if (!name) {
      setText("edit-error", "The name cannot be empty.");
      $("edit-name").focus();
      return;
    }
    let metadata = {};
    const raw = $("edit-metadata").value.trim();
    if (raw) {
      try {
        metadata = JSON.parse(raw);
      } catch (err) {
        metadata = null;
      }
      if (!metadata || typeof metadata !== "object" || Array.isArray(metadata)) {
        setText("edit-error", "Metadata must be a JSON object, e.g. {\"team\": \"r&d\"}.");
        $("edit-metadata").focus();
        return;
      }
    }
    try {
      const out = await api("/v1/persons/" + encodeURIComponent(current.id),
        { method: "PATCH", json: { name, metadata } });
      current = out.person;
      setText("person-name", current.name);
      setText("person-crumb", current.name);
      setText("erase-name", current.name);
      setText("erase-name-2", current.name);
      setText("edit-saved", "Saved.");
    } catch (err) {
      setText("edit-error", describe(err));
    }
  }

  async function addFaces(event) {
    event.preventDefault();
    if (!current) return;
    const files = [...$("add-files").files];
    setText("add-error", "");
    if (!files.length) {
      setText("add-error", "Choose one or more photos first.");
      return;
    }
    const form = new FormData();
    for (const f of files) form.append("image", f, f.name);
    if ($("add-mismatch").checked) form.append("allow_mismatch", "true");
    try {
      const out = await api("/v1/persons/" + encodeURIComponent(current.id) + "/faces", { method: "POST", form });
      toast("Added " + out.faces.length + (out.faces.length === 1 ? " face." : " faces."));
      $("add-files").value = "";
      revokeAll();
      loadPerson(current.id);
    } catch (err) {
      const which = err.details && Number.isInteger(err.details.image_index) && files[err.details.image_index];
      setText("add-error", (which ? which.name + ": " : "") + describe(err));
    }
  }

  async function erasePerson(event) {
    event.preventDefault();
    if (!current || $("erase-confirm").value.trim() !== current.name) {
      setText("erase-error", "Type the person’s name exactly to confirm.");
      return;
    }
    const p = current;
    try {
      await api("/v1/persons/" + encodeURIComponent(p.id), { method: "DELETE" });
    } catch (err) {
      setText("erase-error", describe(err));
      return;
    }
    current = null;
    toast("Erased " + p.name + " (" + p.id + ").");
    refreshStatus();
    people.cursors = [null];
    people.page = 0;
    location.hash = "#/people";
  }

  // ---------------------------------------------------------------- enroll

  let enrollItems = [];

  function resetEnroll() {
    enrollItems = [];
    clear($("enroll-photos"));
    $("enroll-form").reset();
    setText("enroll-error", "");
  }

  function addEnrollFiles(files) {
    for (const file of files) {
      const item = { file, id: Math.random().toString(36).slice(2) };
      const canvas = el("canvas", { role: "img", "aria-label": "Photo " + file.name });
      const verdict = el("p", { class: "verdict pending" }, "Checking…");
      const checks = el("ul", { class: "checks" });
      const problem = el("p", { class: "error", role: "alert" });
      const remove = el("button", { type: "button", class: "ghost small", "aria-label": "Remove " + file.name,
        onclick: () => {
          enrollItems = enrollItems.filter((x) => x !== item);
          item.node.remove();
          for (const other of enrollItems) other.problem.textContent = "";
          setText("enroll-error", "");
          renumber();
        } }, "Remove");
      item.node = el("li", { class: "photo card" },
        el("div", { class: "photo-head" }, el("span", { class: "photo-name" }, file.name), remove),
        el("div", { class: "canvas-wrap" }, canvas), verdict, checks, problem);
      item.problem = problem;
      enrollItems.push(item);
      $("enroll-photos").append(item.node);
      checkPhoto(item, canvas, verdict, checks);
    }
    renumber();
  }

  function renumber() {
    enrollItems.forEach((item, i) => { item.node.dataset.index = String(i); });
  }

  async function checkPhoto(item, canvas, verdict, checks) {
    const form = new FormData();
    form.append("image", item.file, item.file.name);
    let result;
    try {
      result = await api("/v1/quality", { method: "POST", form });
    } catch (err) {
      verdict.className = "verdict bad";
      verdict.textContent = describe(err);
      await drawPhoto(canvas, item.file, [], null);
      return;
    }
    const marks = result.faces.map((f, i) => {
      const chosen = i === result.face_index;
      let color = "#94a3b8";
      if (result.problem && result.problem.code === "multiple_faces") color = "#ea580c";
      if (chosen) color = result.enrollable ? "#16a34a" : "#dc2626";
      return { box: f.box, landmarks: chosen ? f.landmarks : null, color, dashed: !chosen && result.face_index !== null,
        emphasis: chosen, label: chosen ? (result.enrollable ? "✓ enrollable" : "✗ " + result.problem.code)
          : (result.face_index === null ? "face " + (i + 1) : null) };
    });
    await drawPhoto(canvas, item.file, marks, result.image);
    canvas.setAttribute("aria-label", item.file.name + ": " + result.faces.length +
      (result.faces.length === 1 ? " face found" : " faces found"));
    item.check = result;
    if (result.enrollable) {
      verdict.className = "verdict ok";
      verdict.textContent = "Ready to enroll: one face, every quality check passes.";
    } else {
      verdict.className = "verdict bad";
      verdict.textContent = describe({ code: result.problem.code, details: result.problem.details,
        message: result.problem.message });
    }
    clear(checks);
    if (result.quality) {
      const failed = new Map(result.failed.map((f) => [f.check, f]));
      for (const [check, qk] of Object.entries(QUALITY_KEYS)) {
        const bad = failed.get(check);
        checks.append(el("li", { class: bad ? "bad" : "ok", title: CHECK_WORDS[check] },
          el("span", { class: "check-name" }, el("span", { "aria-hidden": "true" }, bad ? "✗ " : "✓ "),
            el("span", { class: "sr-only" }, bad ? "fails: " : "passes: "), CHECK_SHORT[check]),
          el("span", { class: "check-value" }, String(result.quality[qk]),
            bad ? el("span", { class: "limit" }, " " + limitWords(check, bad.limit)) : null)));
      }
    }
  }

  async function register(event) {
    event.preventDefault();
    setText("enroll-error", "");
    for (const item of enrollItems) {
      item.problem.textContent = "";
      item.node.classList.remove("failed");
    }
    const name = $("enroll-name").value.trim();
    const personId = $("enroll-id").value.trim();
    const metadata = $("enroll-metadata").value.trim();
    if (!name) {
      setText("enroll-error", "Give the person a name.");
      $("enroll-name").focus();
      return;
    }
    if (!enrollItems.length) {
      setText("enroll-error", "Add at least one photo.");
      $("enroll-files").focus();
      return;
    }
    if (metadata) {
      let parsed = null;
      try { parsed = JSON.parse(metadata); } catch (err) { parsed = null; }
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
        setText("enroll-error", "Metadata must be a JSON object, e.g. {\"team\": \"r&d\"}.");
        $("enroll-metadata").focus();
        return;
      }
    }
    const form = new FormData();
    form.append("name", name);
    if (personId) form.append("person_id", personId);
    if (metadata) form.append("metadata", metadata);
    for (const item of enrollItems) form.append("image", item.file, item.file.name);
    const button = $("enroll-submit");
    button.disabled = true;
    button.textContent = "Registering…";
    try {
      const out = await api("/v1/persons", { method: "POST", form });
      toast("Registered " + out.person.name + " with " + out.faces.length +
        (out.faces.length === 1 ? " face." : " faces."));
      resetEnroll();
      refreshStatus();
      location.hash = "#/person/" + encodeURIComponent(out.person.id);
    } catch (err) {
      const index = err.details ? err.details.image_index : undefined;
      const item = Number.isInteger(index) ? enrollItems[index] : null;
      if (item) {
        item.problem.textContent = "Registration refused this photo: " + describe(err);
        item.node.classList.add("failed");
        setText("enroll-error", "Photo " + (index + 1) + " (" + item.file.name + ") was refused: see the message " +
          "under it. Nothing was registered.");
        item.node.scrollIntoView({ block: "nearest" });
      } else {
        setText("enroll-error", describe(err));
      }
    } finally {
      button.disabled = false;
      button.textContent = "Register";
    }
  }

  // ---------------------------------------------------------------- try: verify and identify

  function scoreBar(similarity, threshold, match) {
    const pct = (x) => Math.max(0, Math.min(100, x * 100)).toFixed(1) + "%";
    const bar = el("div", { class: "bar " + (match ? "ok" : "bad"), role: "img",
      "aria-label": "similarity " + fmtScore(similarity) + ", threshold " + fmtScore(threshold) });
    const fill = el("span", { class: "fill" });
    fill.style.width = pct(similarity);
    const mark = el("span", { class: "mark", title: "threshold " + fmtScore(threshold) });
    mark.style.left = pct(threshold);
    bar.append(fill, mark);
    return el("div", { class: "score" }, bar,
      el("p", { class: "muted small" }, "similarity " + fmtScore(similarity) +
        (similarity >= threshold ? " ≥ " : " < ") + "threshold " + fmtScore(threshold)));
  }

  async function verify(event) {
    event.preventDefault();
    const out = clear($("verify-result"));
    setText("verify-error", "");
    const personId = $("verify-person").value.trim();
    const file = $("verify-file").files[0];
    if (!personId || !file) {
      setText("verify-error", !personId ? "Enter the person’s id." : "Choose a photo.");
      return;
    }
    const form = new FormData();
    form.append("person_id", personId);
    form.append("image", file, file.name);
    let r;
    try {
      r = await api("/v1/verify", { method: "POST", form });
    } catch (err) {
      setText("verify-error", describe(err));
      return;
    }
    const canvas = el("canvas", { role: "img", "aria-label": "Probe photo with the face compared" });
    out.append(
      el("p", { class: "decision " + (r.match ? "ok" : "bad") }, r.match ? "Match" : "No match",
        el("span", { class: "muted" }, " · " + personId)),
      r.similarity !== undefined ? scoreBar(r.similarity, r.threshold, r.match) : null,
      el("div", { class: "canvas-wrap" }, canvas));
    await drawPhoto(canvas, file, [{ box: r.box, color: r.match ? "#16a34a" : "#dc2626", emphasis: true,
      label: r.match ? "match" : "no match" }], null);
  }

  async function identify(event) {
    event.preventDefault();
    const out = clear($("identify-result"));
    setText("identify-error", "");
    const file = $("identify-file").files[0];
    if (!file) {
      setText("identify-error", "Choose a photo.");
      return;
    }
    const form = new FormData();
    form.append("image", file, file.name);
    if ($("identify-all").checked) form.append("all_faces", "true");
    let r;
    try {
      r = await api("/v1/identify", { method: "POST", form });
    } catch (err) {
      setText("identify-error", describe(err));
      return;
    }
    const canvas = el("canvas", { role: "img", "aria-label": "Photo with " + r.faces.length + " faces marked" });
    const list = el("ol", { class: "identified" });
    r.faces.forEach((f, i) => {
      const best = f.match || (f.candidates && f.candidates[0]) || null;
      list.append(el("li", { class: f.match ? "ok" : "bad" },
        el("p", { class: "decision " + (f.match ? "ok" : "bad") }, "Face " + (i + 1) + ": ",
          f.match ? el("a", { href: "#/person/" + encodeURIComponent(f.match.person_id) }, f.match.name)
            : "unknown",
          f.match ? el("span", { class: "muted" }, " · " + f.match.person_id) : null),
        best && best.similarity !== undefined ? scoreBar(best.similarity, r.threshold, !!f.match) : null,
        !f.match && best ? el("p", { class: "muted small" }, "closest: " + best.name + " (" + best.person_id + ")")
          : null));
    });
    out.append(
      r.threshold !== undefined ? el("p", { class: "muted small" }, "open-set threshold " + fmtScore(r.threshold) +
        " for " + r.gallery_size + " people (target " + (r.target_open_set_far * 100) + "% false matches)") : null,
      el("div", { class: "canvas-wrap" }, canvas), list);
    await drawPhoto(canvas, file, r.faces.map((f, i) => ({ box: f.box, emphasis: !!f.match,
      color: f.match ? "#16a34a" : "#64748b", label: (i + 1) + " " + (f.match ? f.match.name : "unknown") })), null);
  }

  // ---------------------------------------------------------------- wiring

  function init() {
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", () => signOut("Signed out."));
    $("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      people.q = $("search-q").value.trim();
      people.cursors = [null];
      people.page = 0;
      loadPeople();
    });
    $("search-clear").addEventListener("click", () => {
      $("search-q").value = "";
      people.q = "";
      people.cursors = [null];
      people.page = 0;
      loadPeople();
    });
    $("page-size").addEventListener("change", () => {
      people.size = Number($("page-size").value) || 20;
      people.cursors = [null];
      people.page = 0;
      revokeAll();
      loadPeople();
    });
    $("page-next").addEventListener("click", () => {
      if (!people.next) return;
      people.cursors[people.page + 1] = people.next;
      people.page += 1;
      revokeAll();
      loadPeople();
    });
    $("page-prev").addEventListener("click", () => {
      if (people.page === 0) return;
      people.page -= 1;
      revokeAll();
      loadPeople();
    });
    $("edit-form").addEventListener("submit", saveEdit);
    $("add-form").addEventListener("submit", addFaces);
    $("erase-confirm").addEventListener("input", () => {
      $("erase-submit").disabled = !current || $("erase-confirm").value.trim() !== current.name;
    });
    $("erase-form").addEventListener("submit", erasePerson);
    $("enroll-files").addEventListener("change", () => {
      addEnrollFiles([...$("enroll-files").files]);
      $("enroll-files").value = "";
    });
    const drop = $("enroll-drop");
    drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      addEnrollFiles([...event.dataTransfer.files].filter((f) => f.type.startsWith("image/") || /\.hei[cf]$/i.test(f.name)));
    });
    $("enroll-form").addEventListener("submit", register);
    $("enroll-reset").addEventListener("click", resetEnroll);
    $("verify-form").addEventListener("submit", verify);
    $("identify-form").addEventListener("submit", identify);
    window.addEventListener("hashchange", route);
    if (key()) {
      refreshStatus().then((s) => (s ? route() : signOut("Your key is no longer accepted. Sign in again.")));
    } else {
      signOut();
    }
  }

  document.addEventListener("DOMContentLoaded", init);
})();
