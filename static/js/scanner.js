// Door scanner: reads ticket QR codes with the phone camera (jsQR, static/vendor/jsqr/),
// checks each code's Ed25519 signature on the phone (WebCrypto), and checks the ticket in
// through the check-in API. When the network is gone it decides on the phone from the
// event's manifest and this device's own scans, queues the scan in localStorage and sends
// the queue in order when the network is back; entries the server had already recorded
// are listed as conflicts. Config and texts come from data- attributes (CSP: no inline
// script; the template translates the texts).
(() => {
  "use strict";

  const root = document.getElementById("scanner");
  if (!root) return;
  const cfg = root.dataset;
  const eventId = Number(cfg.eventId);

  // A code that stays in front of the camera is read many times a second: it is sent
  // once, then ignored until it has been out of sight for this long.
  const SAME_CODE_COOLDOWN_MS = 3000;
  const DECODE_EVERY_MS = 150;
  const DECODE_MAX_WIDTH = 640;
  const UNDO_WINDOW_MS = (Number(cfg.undoSeconds) || 60) * 1000; // the server's limit
  const MANIFEST_REFRESH_MS = 60_000;
  const SYNC_RETRY_MS = 15_000;
  const REQUEST_TIMEOUT_MS = 8000;
  // A queued scan answered "already checked in" at the same gate, recorded between just
  // before it and the end of its request, is this device's own entry whose answer was lost.
  const OWN_ENTRY_MARGIN_MS = 2000;

  const storageKey = (name) => `checkin:${eventId}:${name}`;
  const GATE_KEY = "checkin:gate"; // one gate per device, whatever the event

  const field = (name) => root.querySelector(`[data-field="${name}"]`);
  const panel = (name) => root.querySelector(`[data-panel="${name}"]`);
  const action = (name) => root.querySelector(`[data-action="${name}"]`);
  const fill = (template, values) =>
    template.replace(/\{(\w+)\}/g, (match, key) => (key in values ? String(values[key]) : match));
  const numberFormat = new Intl.NumberFormat(cfg.language || undefined);
  const timeFormat = new Intl.DateTimeFormat(cfg.language || undefined, {
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
    timeZone: cfg.timeZone || undefined,
  });
  const pluralRules = new Intl.PluralRules(cfg.language || undefined);

  const video = field("video");
  const canvas = field("canvas");
  const canvasContext = canvas.getContext("2d", { willReadFrequently: true });

  // --- stored state ------------------------------------------------------------------

  function load(key, fallback) {
    try {
      const text = window.localStorage.getItem(key);
      return text === null ? fallback : JSON.parse(text);
    } catch (error) {
      return fallback;
    }
  }

  function save(key, value) {
    try {
      window.localStorage.setItem(key, JSON.stringify(value));
    } catch (error) {
      // Storage full or disabled: the page still works, only a reload would forget.
    }
  }

  let gate = load(GATE_KEY, "") || "";
  // Scans waiting to be sent, oldest first: {code, ticket_code, gate, scanned_at}.
  let queue = load(storageKey("queue"), []);
  // This device's entries by ticket code: {at, gate}. With the manifest, what makes an
  // offline repeat scan amber.
  let localEntries = load(storageKey("entries"), {});
  let deviceScans = load(storageKey("scans"), 0);
  let conflicts = load(storageKey("conflicts"), []);

  // The manifest lives in memory only: it holds the holders' names.
  let manifest = null; // {byCode: Map, total, generatedAt}

  let stream = null; // the camera's MediaStream while it is on
  let decodeTimer = null;
  let lastSeen = { text: "", at: 0 }; // the code last read, and when (the cooldown)
  let busy = false; // a code is being checked: the camera waits
  let lastRequestFailed = false;
  // Server clock minus this phone's, from the manifest: a queued scan is stamped in the
  // server's time, so a phone with a wrong clock can't win or lose a first entry.
  let clockOffsetMs = load(storageKey("clock-offset"), 0);

  // --- time --------------------------------------------------------------------------

  function formatTime(iso) {
    const when = new Date(iso);
    return Number.isNaN(when.getTime()) ? "?" : timeFormat.format(when);
  }

  function serverNow() {
    return new Date(Date.now() + clockOffsetMs).toISOString();
  }

  // "Section A, row B-3" in the page's language, from {section, row, number} (the API's
  // seat, a manifest ticket); the API's plain label otherwise.
  function seatText(seat) {
    if (!seat) return "";
    if (seat.section !== undefined && seat.row !== undefined && seat.number !== undefined) {
      return fill(cfg.msgSeat, { section: seat.section, row: seat.row, number: seat.number });
    }
    return seat.label || seat.seat || "";
  }

  // --- the answer --------------------------------------------------------------------

  const ICONS = { ok: "✓", repeat: "!", bad: "✕", info: "…", idle: "" };
  let undoTimer = null;
  let undoTarget = null;
  let shownQueuedScan = null; // the queued scan the answer shows, to update it once synced

  function showAnswer(state, { title, seat = "", holder = "", detail = "", offline = false }) {
    const answer = field("answer");
    shownQueuedScan = null;
    answer.dataset.state = state;
    answer.dataset.offline = String(offline);
    field("answer-icon").textContent = ICONS[state] || "";
    field("answer-title").textContent = title;
    field("answer-seat").textContent = seat;
    field("answer-holder").textContent = holder ? fill(cfg.msgHolder, { name: holder }) : "";
    field("answer-detail").textContent = detail;
    // Restart the flash so a second identical answer is still seen as new.
    answer.classList.remove("flash");
    void answer.offsetWidth; // eslint-disable-line no-void
    answer.classList.add("flash");
    if (navigator.vibrate && state !== "info") {
      navigator.vibrate(state === "ok" ? 80 : state === "repeat" ? [80, 80, 80] : [300, 100, 300]);
    }
  }

  function offerUndo(target) {
    hideUndo();
    undoTarget = target;
    panel("undo").hidden = false;
    const until = Date.now() + UNDO_WINDOW_MS;
    const tick = () => {
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left <= 0) {
        hideUndo();
        return;
      }
      field("undo-note").textContent = `${left} s`;
      undoTimer = window.setTimeout(tick, 1000);
    };
    tick();
  }

  function hideUndo() {
    if (undoTimer) window.clearTimeout(undoTimer);
    undoTimer = null;
    undoTarget = null;
    panel("undo").hidden = true;
  }

  // --- figures -----------------------------------------------------------------------

  function renderFigures() {
    if (manifest) {
      let checkedIn = 0;
      manifest.byCode.forEach((ticket, code) => {
        if (ticket.state === "checked_in" || localEntries[code]) checkedIn += 1;
      });
      field("checked-in").textContent = numberFormat.format(checkedIn);
      field("total").textContent = numberFormat.format(manifest.total);
      field("manifest-age").textContent = fill(cfg.msgManifestAge, { time: formatTime(manifest.generatedAt) });
    }
    field("device-scans").textContent = numberFormat.format(deviceScans);
    const waiting = queue.length;
    field("sync-status").textContent = waiting
      ? fill(pluralRules.select(waiting) === "one" ? cfg.msgQueueOne : cfg.msgQueueOther, {
          count: numberFormat.format(waiting),
        })
      : cfg.msgQueueEmpty;
    field("sync-status").dataset.waiting = String(waiting);
    action("sync").hidden = waiting === 0 || !navigator.onLine;
    renderConflicts();
  }

  function renderNetwork() {
    const online = navigator.onLine && !lastRequestFailed;
    const element = field("network");
    element.dataset.online = String(online);
    field("network-text").textContent = online ? cfg.msgOnline : cfg.msgOffline;
    action("sync").hidden = queue.length === 0 || !navigator.onLine;
  }

  function renderConflicts() {
    const list = field("conflicts");
    list.replaceChildren(
      ...conflicts.map((conflict) => {
        const item = document.createElement("li");
        const heading = document.createElement("strong");
        heading.textContent = [conflict.ticket_code, conflict.seat].filter(Boolean).join(" · ");
        const text = document.createElement("span");
        text.textContent =
          conflict.reason === "already_checked_in"
            ? fill(cfg.msgConflict, {
                time: formatTime(conflict.first_at),
                gate: conflict.first_gate || "?",
                scanned: formatTime(conflict.scanned_at),
                scanned_gate: conflict.gate,
              })
            : fill(cfg.msgConflictOther, {
                scanned: formatTime(conflict.scanned_at),
                scanned_gate: conflict.gate,
                reason: conflict.detail || conflict.reason,
              });
        item.append(heading, " ", text);
        item.dataset.ticket = conflict.ticket_code;
        return item;
      }),
    );
    panel("conflicts").hidden = conflicts.length === 0;
  }

  // --- gate --------------------------------------------------------------------------

  function renderGate() {
    const hasGate = Boolean(gate);
    panel("gate-current").hidden = !hasGate;
    panel("gate-form").hidden = hasGate;
    field("gate").textContent = gate;
    root.dataset.gateChosen = String(hasGate);
  }

  document.getElementById("gate-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("gate-name");
    const name = input.value.trim().slice(0, 64);
    if (!name) {
      input.focus();
      return;
    }
    gate = name;
    save(GATE_KEY, gate);
    renderGate();
    if (!stream) startCamera();
  });

  action("change-gate").addEventListener("click", () => {
    const input = document.getElementById("gate-name");
    input.value = gate;
    panel("gate-current").hidden = true;
    panel("gate-form").hidden = false;
    input.focus();
    input.select();
  });

  // --- codes and signatures ----------------------------------------------------------

  function base64UrlBytes(text) {
    const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
    const binary = window.atob(padded);
    const bytes = new Uint8Array(binary.length);
    for (let index = 0; index < binary.length; index += 1) bytes[index] = binary.charCodeAt(index);
    return bytes;
  }

  // TK1.<event id>.<ticket code>.<signature>: the signature covers all before the last dot.
  const PAYLOAD = /^TK1\.([1-9][0-9]{0,17})\.([A-Z0-9]{1,24})\.([A-Za-z0-9_-]{86})$/;

  let verifyKeyPromise = null;
  let verifyKeyText = "";

  // The public key as a WebCrypto key, or null where this browser has no Ed25519 (then
  // the server is the only judge; offline, the manifest still is).
  function verifyKey() {
    const keyText = cfg.publicKey;
    if (verifyKeyPromise && verifyKeyText === keyText) return verifyKeyPromise;
    verifyKeyText = keyText;
    verifyKeyPromise = (async () => {
      try {
        if (!window.crypto || !window.crypto.subtle || !keyText) return null;
        return await window.crypto.subtle.importKey("raw", base64UrlBytes(keyText), { name: "Ed25519" }, false, [
          "verify",
        ]);
      } catch (error) {
        return null;
      }
    })();
    return verifyKeyPromise;
  }

  // true (genuine), false (forged or malformed) or null (cannot tell here).
  async function signatureValid(text, match) {
    const key = await verifyKey();
    if (!key) return null;
    const message = new TextEncoder().encode(text.slice(0, text.lastIndexOf(".")));
    try {
      return await window.crypto.subtle.verify({ name: "Ed25519" }, key, base64UrlBytes(match[3]), message);
    } catch (error) {
      return false;
    }
  }

  // What was read or typed, as {code (what the API gets), ticketCode, eventId, forged}.
  async function parseCode(raw) {
    const text = raw.trim();
    if (/^TK1\./i.test(text)) {
      const match = PAYLOAD.exec(text);
      if (!match) return { code: text, ticketCode: "", eventId: null, forged: true };
      const valid = await signatureValid(text, match);
      return { code: text, ticketCode: match[2], eventId: Number(match[1]), forged: valid === false };
    }
    // Typed by hand: case, spaces and dashes don't matter.
    const ticketCode = text.toUpperCase().replace(/[\s-]+/g, "");
    return { code: ticketCode, ticketCode, eventId: null, forged: false };
  }

  // --- the network -------------------------------------------------------------------

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : cfg.csrfToken;
  }

  class NetworkError extends Error {}

  // {status, body}; throws NetworkError when there is no answer worth keeping (no
  // network, a timeout, or a 5xx: the scan is then decided here and queued).
  async function send(url, payload) {
    if (!navigator.onLine) throw new NetworkError("offline");
    const controller = new AbortController();
    const timer = window.setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(payload),
        signal: controller.signal,
      });
    } catch (error) {
      throw new NetworkError(String(error));
    } finally {
      window.clearTimeout(timer);
    }
    if (response.status >= 500) throw new NetworkError(String(response.status));
    const body = await response.json().catch(() => ({}));
    return { status: response.status, body };
  }

  function markNetwork(ok) {
    const changed = lastRequestFailed === ok;
    lastRequestFailed = !ok;
    if (changed) renderNetwork();
  }

  // --- the manifest ------------------------------------------------------------------

  async function refreshManifest() {
    if (!navigator.onLine) return;
    const sentAt = Date.now();
    let response;
    try {
      response = await fetch(cfg.manifestUrl, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        cache: "no-store",
      });
    } catch (error) {
      markNetwork(false);
      return;
    }
    markNetwork(true);
    if (!response.ok) return; // answered, but no list (logged out, a server error): keep the last one
    const body = await response.json().catch(() => null);
    if (!body || !Array.isArray(body.tickets)) return;
    const serverTime = Date.parse(body.generated_at);
    if (!Number.isNaN(serverTime)) {
      clockOffsetMs = Math.round(serverTime - (sentAt + Date.now()) / 2);
      save(storageKey("clock-offset"), clockOffsetMs);
    }
    const byCode = new Map();
    body.tickets.forEach((ticket) => byCode.set(ticket.code, ticket));
    manifest = { byCode, total: body.total, generatedAt: body.generated_at };
    if (body.public_key && body.public_key !== cfg.publicKey) cfg.publicKey = body.public_key;
    // This device's memory of its own entries yields to the server only where the list
    // is newer than the entry and says the ticket is not in (the entry was undone): an
    // entry made while the list was on its way, or still queued, stays.
    const pending = new Set(queue.map((scan) => scan.ticket_code));
    Object.entries(localEntries).forEach(([code, entry]) => {
      const ticket = byCode.get(code);
      const listIsNewer = serverTime > Date.parse(entry.at) + OWN_ENTRY_MARGIN_MS;
      if (!pending.has(code) && ticket && ticket.state !== "checked_in" && listIsNewer) delete localEntries[code];
    });
    save(storageKey("entries"), localEntries);
    renderFigures();
  }

  function manifestRecordEntry(ticketCode, at, entryGate) {
    const ticket = manifest && manifest.byCode.get(ticketCode);
    if (ticket) {
      ticket.state = "checked_in";
      ticket.checked_in_at = at;
      ticket.gate = entryGate;
    }
  }

  function manifestRecordUndo(ticketCode) {
    const ticket = manifest && manifest.byCode.get(ticketCode);
    if (ticket && ticket.state === "checked_in") {
      ticket.state = "valid";
      ticket.checked_in_at = null;
      ticket.gate = null;
    }
  }

  // --- checking a code in ------------------------------------------------------------

  const REFUSALS = {
    ticket_cancelled: ["msgCancelled", "msgCancelledDetail"],
    unknown_ticket: ["msgUnknown", "msgUnknownDetail"],
    other_event: ["msgOtherEvent", "msgOtherEventDetail"],
    forged: ["msgForged", "msgForgedDetail"],
    permission_denied: ["msgNotAllowed", "msgNotAllowedDetail"],
    not_authenticated: ["msgNotAllowed", "msgNotAllowedDetail"],
  };

  function showRefusal(code, detail) {
    const [title, text] = REFUSALS[code] || ["msgError", null];
    showAnswer("bad", { title: cfg[title], detail: text ? cfg[text] : detail || code });
  }

  function showRepeat({ seat, holder, at, entryGate }) {
    showAnswer("repeat", {
      title: cfg.msgRepeat,
      seat,
      holder,
      detail: fill(cfg.msgRepeatDetail, { time: formatTime(at), gate: entryGate || "?" }),
    });
  }

  function countScan() {
    deviceScans += 1;
    save(storageKey("scans"), deviceScans);
  }

  async function checkIn(raw) {
    if (!gate) {
      showAnswer("bad", { title: cfg.msgError, detail: cfg.msgNoGate });
      document.getElementById("gate-name").focus();
      return;
    }
    busy = true;
    try {
      const scan = await parseCode(raw);
      countScan();
      if (scan.forged) {
        // Decided here: a forged or edited code never reaches the server.
        hideUndo();
        showRefusal("forged");
        return;
      }
      if (!scan.ticketCode) {
        showRefusal("unknown_ticket");
        return;
      }
      const entry = { code: scan.code, ticket_code: scan.ticketCode, gate, scanned_at: serverNow() };
      showAnswer("info", { title: cfg.msgChecking });
      let answer;
      try {
        // Live: no scanned_at, the server's own clock decides (only queued scans carry it).
        answer = await send(cfg.checkinUrl, { code: entry.code, gate: entry.gate, event_id: eventId });
      } catch (error) {
        if (!(error instanceof NetworkError)) throw error;
        markNetwork(false);
        decideOffline(scan, entry);
        return;
      }
      markNetwork(true);
      showServerAnswer(entry, answer);
      if (queue.length) syncQueue();
    } finally {
      busy = false;
      renderFigures();
    }
  }

  function showServerAnswer(entry, { status, body }) {
    hideUndo();
    if (status === 201) {
      const ticketCode = body.ticket_code || entry.ticket_code;
      localEntries[ticketCode] = { at: body.checked_in_at, gate: body.gate };
      save(storageKey("entries"), localEntries);
      manifestRecordEntry(ticketCode, body.checked_in_at, body.gate);
      showAnswer("ok", { title: cfg.msgWelcome, seat: seatText(body.seat), holder: body.holder });
      offerUndo({ ticketCode, gate: body.gate || entry.gate, queued: false });
    } else if (body.code === "already_checked_in") {
      manifestRecordEntry(entry.ticket_code, body.checked_in_at, body.gate);
      showRepeat({ seat: seatText(body.seat), holder: body.holder, at: body.checked_in_at, entryGate: body.gate });
    } else {
      showRefusal(body.code, body.detail);
    }
  }

  // No answer from the server: decide from the signature (already checked), the
  // manifest and this device's own entries, and queue an admission for later.
  function decideOffline(scan, entry) {
    hideUndo();
    if (scan.eventId !== null && scan.eventId !== eventId) {
      showRefusal("other_event");
      return;
    }
    const ticket = manifest ? manifest.byCode.get(scan.ticketCode) : undefined;
    const seat = seatText(ticket);
    const holder = ticket ? ticket.holder : "";
    if (ticket && ticket.state === "cancelled") {
      showRefusal("ticket_cancelled");
      return;
    }
    const own = localEntries[scan.ticketCode];
    if (own || (ticket && ticket.state === "checked_in")) {
      showRepeat({
        seat,
        holder,
        at: own ? own.at : ticket.checked_in_at,
        entryGate: own ? own.gate : ticket.gate,
      });
      return;
    }
    // A signed code missing from the manifest is a ticket booked since it was loaded;
    // a typed code must be in the manifest (it proves nothing by itself).
    if (!ticket && scan.eventId === null) {
      if (manifest) showRefusal("unknown_ticket");
      else showAnswer("bad", { title: cfg.msgError, detail: cfg.msgManifestMissing });
      return;
    }
    queue.push(entry);
    save(storageKey("queue"), queue);
    localEntries[scan.ticketCode] = { at: entry.scanned_at, gate: entry.gate };
    save(storageKey("entries"), localEntries);
    showAnswer("ok", { title: cfg.msgWelcome, seat, holder, detail: cfg.msgOfflineSync, offline: true });
    shownQueuedScan = entry;
    offerUndo({ ticketCode: scan.ticketCode, gate: entry.gate, queued: true, scannedAt: entry.scanned_at });
  }

  // --- undo --------------------------------------------------------------------------

  function forgetLocalEntry(ticketCode) {
    delete localEntries[ticketCode];
    save(storageKey("entries"), localEntries);
    manifestRecordUndo(ticketCode);
  }

  action("undo").addEventListener("click", async () => {
    const target = undoTarget;
    if (!target) return;
    hideUndo();
    const stillQueued = queue.findIndex(
      (scan) => scan.ticket_code === target.ticketCode && scan.scanned_at === target.scannedAt,
    );
    if (stillQueued >= 0) {
      queue.splice(stillQueued, 1);
      save(storageKey("queue"), queue);
      forgetLocalEntry(target.ticketCode);
      showAnswer("info", { title: cfg.msgUndone, detail: cfg.msgUndoneDetail });
      renderFigures();
      return;
    }
    try {
      const { status, body } = await send(cfg.undoUrl, { code: target.ticketCode, gate: target.gate });
      markNetwork(true);
      if (status === 200) {
        forgetLocalEntry(target.ticketCode);
        showAnswer("info", { title: cfg.msgUndone, detail: cfg.msgUndoneDetail });
      } else {
        showAnswer("bad", { title: cfg.msgError, detail: fill(cfg.msgUndoFailed, { detail: body.detail || status }) });
      }
    } catch (error) {
      markNetwork(false);
      showAnswer("bad", { title: cfg.msgError, detail: fill(cfg.msgUndoFailed, { detail: cfg.msgOffline }) });
    }
    renderFigures();
  });

  // --- the offline queue -------------------------------------------------------------

  let syncing = false;

  function addConflict(scan, body, reason) {
    const ticket = manifest && manifest.byCode.get(scan.ticket_code);
    conflicts.push({
      ticket_code: scan.ticket_code,
      seat: seatText(body.seat) || seatText(ticket),
      first_at: body.checked_in_at || null,
      first_gate: body.gate || null,
      scanned_at: scan.scanned_at,
      gate: scan.gate,
      reason,
      detail: body.detail || "",
    });
    save(storageKey("conflicts"), conflicts);
  }

  function isOwnEntry(scan, body) {
    const recorded = Date.parse(body.checked_in_at) - Date.parse(scan.scanned_at);
    return (
      body.gate === scan.gate &&
      recorded >= -OWN_ENTRY_MARGIN_MS &&
      recorded <= REQUEST_TIMEOUT_MS + OWN_ENTRY_MARGIN_MS
    );
  }

  // Sends the queued scans oldest first; stops at the first one without an answer (the
  // rest wait for the next try) and keeps the queue in storage after each step.
  async function syncQueue() {
    if (syncing || !queue.length || !navigator.onLine) return;
    syncing = true;
    field("sync-status").textContent = cfg.msgSyncing;
    try {
      while (queue.length) {
        const scan = queue[0];
        let answer;
        try {
          answer = await send(cfg.checkinUrl, {
            code: scan.code,
            gate: scan.gate,
            scanned_at: scan.scanned_at,
            event_id: eventId,
          });
        } catch (error) {
          markNetwork(false);
          return;
        }
        markNetwork(true);
        const { status, body } = answer;
        if (status === 401 || body.code === "permission_denied" || body.code === "not_authenticated") {
          field("sync-status").textContent = cfg.msgSyncLogin;
          return;
        }
        if (status === 201) {
          localEntries[scan.ticket_code] = { at: body.checked_in_at, gate: body.gate };
          manifestRecordEntry(scan.ticket_code, body.checked_in_at, body.gate);
          if (shownQueuedScan === scan) {
            field("answer-detail").textContent = cfg.msgSynced;
            field("answer").dataset.offline = "false";
          }
        } else if (body.code === "already_checked_in") {
          if (!isOwnEntry(scan, body)) {
            addConflict(scan, body, body.code);
            if (shownQueuedScan === scan) {
              hideUndo();
              showRepeat({ seat: seatText(body.seat), holder: body.holder, at: body.checked_in_at, entryGate: body.gate });
            }
          }
          manifestRecordEntry(scan.ticket_code, body.checked_in_at, body.gate);
        } else {
          // Cancelled, unknown, another event's: admitted here, refused by the server.
          addConflict(scan, body, body.code || String(status));
        }
        queue.shift();
        save(storageKey("queue"), queue);
        save(storageKey("entries"), localEntries);
      }
    } finally {
      syncing = false;
      renderFigures();
    }
  }

  action("sync").addEventListener("click", () => {
    lastRequestFailed = false;
    syncQueue();
    refreshManifest();
  });

  action("clear-conflicts").addEventListener("click", () => {
    conflicts = [];
    save(storageKey("conflicts"), conflicts);
    renderConflicts();
  });

  window.addEventListener("online", () => {
    renderNetwork();
    syncQueue();
    refreshManifest();
  });
  window.addEventListener("offline", renderNetwork);
  // Another tab of this scanner (or a reload) changed the queue: follow it.
  window.addEventListener("storage", (event) => {
    if (event.key === storageKey("queue")) {
      queue = load(storageKey("queue"), []);
      renderFigures();
    } else if (event.key === storageKey("conflicts")) {
      conflicts = load(storageKey("conflicts"), []);
      renderConflicts();
    }
  });
  window.setInterval(syncQueue, SYNC_RETRY_MS);
  window.setInterval(refreshManifest, MANIFEST_REFRESH_MS);

  // --- manual entry ------------------------------------------------------------------

  // Codes are checked one after another: a code typed while a scan is in flight waits.
  let checking = Promise.resolve();
  function runCheck(text) {
    checking = checking.catch(() => {}).then(() => checkIn(text));
    return checking;
  }

  document.getElementById("manual-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("manual-code");
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    lastSeen = { text, at: Date.now() };
    runCheck(text);
  });

  // --- the camera --------------------------------------------------------------------

  function cameraStatus(text) {
    field("camera-status").textContent = text;
  }

  function renderCameraButton() {
    action("camera").textContent = stream ? cfg.msgCameraStop : cfg.msgCameraStart;
    root.dataset.camera = stream ? "on" : "off";
  }

  async function startCamera() {
    if (stream) return;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.jsQR) {
      cameraStatus(fill(cfg.msgCameraFailed, { detail: window.jsQR ? "getUserMedia" : "jsQR" }));
      root.dataset.camera = "failed";
      return;
    }
    cameraStatus(cfg.msgCameraStarting);
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: { ideal: "environment" }, width: { ideal: 1280 }, height: { ideal: 720 } },
        audio: false,
      });
    } catch (error) {
      stream = null;
      cameraStatus(fill(cfg.msgCameraFailed, { detail: error.name || String(error) }));
      renderCameraButton();
      root.dataset.camera = "failed"; // the empty frame folds away: the code form moves up
      return;
    }
    // The camera can be taken away (another app, a lock screen): show it as off.
    stream.getVideoTracks().forEach((track) => track.addEventListener("ended", stopCamera));
    video.srcObject = stream;
    try {
      await video.play();
    } catch (error) {
      // Autoplay refused: the frames still arrive on a muted inline video.
    }
    lastSeen = { text: "", at: 0 };
    cameraStatus(cfg.msgCameraOn);
    renderCameraButton();
    scheduleDecode();
  }

  function stopCamera() {
    if (decodeTimer) window.clearTimeout(decodeTimer);
    decodeTimer = null;
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
    video.srcObject = null;
    cameraStatus(cfg.msgCameraOff);
    renderCameraButton();
  }

  function scheduleDecode() {
    if (decodeTimer) window.clearTimeout(decodeTimer);
    decodeTimer = window.setTimeout(decodeFrame, DECODE_EVERY_MS);
  }

  function decodeFrame() {
    decodeTimer = null;
    if (!stream) return;
    if (busy || document.visibilityState !== "visible" || video.readyState < video.HAVE_CURRENT_DATA) {
      scheduleDecode();
      return;
    }
    const scale = Math.min(1, DECODE_MAX_WIDTH / (video.videoWidth || DECODE_MAX_WIDTH));
    const width = Math.max(1, Math.round(video.videoWidth * scale));
    const height = Math.max(1, Math.round(video.videoHeight * scale));
    if (canvas.width !== width) canvas.width = width;
    if (canvas.height !== height) canvas.height = height;
    canvasContext.drawImage(video, 0, 0, width, height);
    const image = canvasContext.getImageData(0, 0, width, height);
    const found = window.jsQR(image.data, width, height, { inversionAttempts: "dontInvert" });
    const text = found && found.data;
    if (text) {
      const now = Date.now();
      const same = text === lastSeen.text && now - lastSeen.at < SAME_CODE_COOLDOWN_MS;
      lastSeen = { text, at: now };
      if (!same) {
        runCheck(text).finally(scheduleDecode);
        return;
      }
    }
    scheduleDecode();
  }

  action("camera").addEventListener("click", () => {
    if (stream) stopCamera();
    else startCamera();
  });

  // --- start -------------------------------------------------------------------------

  verifyKey().then((key) => {
    field("verify-note").hidden = Boolean(key);
  });
  renderGate();
  renderCameraButton();
  renderNetwork();
  renderFigures();
  showAnswer("idle", { title: cfg.msgReady, detail: cfg.msgReadyDetail });
  field("answer").classList.remove("flash");
  refreshManifest().then(syncQueue);
  if (gate) startCamera();
  root.dataset.ready = "true";
})();
