// Rush dashboard, "Waiting list": polls the staff waiting-list API and redraws the figures,
// the open/paused state and the line; pauses or resumes the list (PATCH {paused}) and takes
// an entry off it after a confirmation (DELETE), with the session cookie and the CSRF token.
// The first state is rendered by the server; texts and URLs come from data- attributes (CSP).
(() => {
  "use strict";

  const root = document.getElementById("waiting-list");
  if (!root) return;
  const cfg = root.dataset;
  const FIGURES = [
    "waiting",
    "waiting_seats",
    "parties",
    "offers_out",
    "accepted",
    "declined",
    "expired",
    "removed",
    "pool_seats",
  ];
  const numberFormat = new Intl.NumberFormat(document.documentElement.lang || undefined);
  const form = document.getElementById("waiting-list-controls");
  const pauseButton = root.querySelector('[data-wl-action="toggle-pause"]');
  const body = root.querySelector('[data-wl="entries"]');
  const scroller = root.querySelector(".wl-line-scroll");
  const field = (name) => root.querySelector(`[data-wl="${name}"]`);
  const fill = (template, values) =>
    template.replace(/\{(\w+)\}/g, (match, key) => (key in values ? String(values[key]) : match));

  // "2026-12-09 19:00:05" in the site's time zone, as the server renders it: staff compare
  // arrival times to the second, in one time zone whatever the browser's.
  let timeFormat = null;
  try {
    timeFormat = new Intl.DateTimeFormat("en-GB", {
      timeZone: cfg.timeZone || undefined,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
    });
  } catch (error) {
    timeFormat = null; // an unknown zone name: the ISO text below
  }

  function joinedText(iso) {
    const when = new Date(iso);
    if (!timeFormat || Number.isNaN(when.getTime())) return iso;
    const part = Object.fromEntries(timeFormat.formatToParts(when).map((p) => [p.type, p.value]));
    return `${part.year}-${part.month}-${part.day} ${part.hour}:${part.minute}:${part.second}`;
  }

  let timer = null;
  let inFlight = false;
  let again = false; // asked for while a poll was out (after a remove): poll once more
  let offline = false;
  let lastEntries = null;

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    const input = form && form.querySelector('input[name="csrfmiddlewaretoken"]');
    return input ? input.value : "";
  }

  function setText(element, text) {
    if (element && element.textContent !== text) element.textContent = text;
  }

  function feedback(text, kind) {
    const element = field("feedback");
    element.textContent = text;
    element.className = `rush-feedback ${kind || ""}`;
  }

  function cell(text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    if (text !== undefined) td.textContent = text;
    return td;
  }

  function row(entry, position) {
    const tr = document.createElement("tr");
    tr.dataset.entryId = String(entry.id);
    const joined = document.createElement("time");
    joined.dateTime = entry.joined_at;
    joined.textContent = joinedText(entry.joined_at);
    const joinedCell = cell();
    joinedCell.append(joined);
    const note = cell();
    if (entry.passed_over) {
      const badge = document.createElement("span");
      badge.className = "badge wl-passed";
      badge.textContent = cfg.msgPassedOver;
      note.append(badge);
    }
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "link-button danger";
    remove.dataset.wlRemove = String(entry.id);
    remove.dataset.email = entry.email;
    const hidden = document.createElement("span");
    hidden.className = "visually-hidden";
    hidden.textContent = ` ${entry.email}`;
    remove.append(cfg.msgRemove, hidden);
    const actions = cell();
    actions.append(remove);
    tr.append(
      cell(position === null ? "–" : numberFormat.format(position), "num"),
      cell(entry.email, "wl-email"),
      cell(numberFormat.format(entry.party_size), "num"),
      cell(entry.state === "offered" ? cfg.msgEntryOffered : cfg.msgEntryWaiting),
      joinedCell,
      note,
      actions,
    );
    return tr;
  }

  // The API lists the waiting entries first, in line order, then the offers out: the
  // place is the count of waiting entries so far (as the server's first render).
  function drawEntries(entries) {
    const signature = JSON.stringify(entries);
    if (signature === lastEntries) return; // unchanged: keep the rows (and the focus)
    lastEntries = signature;
    const focused = document.activeElement && body.contains(document.activeElement)
      ? document.activeElement.dataset.wlRemove
      : null;
    if (!entries.length) {
      const empty = cell(cfg.msgEmpty, "muted");
      empty.colSpan = 7;
      const tr = document.createElement("tr");
      tr.append(empty);
      body.replaceChildren(tr);
    } else {
      let position = 0;
      body.replaceChildren(
        ...entries.map((entry) => {
          const waiting = entry.state === "waiting";
          if (waiting) position += 1;
          return row(entry, waiting ? position : null);
        }),
      );
    }
    if (focused) {
      // The same entry's button again, or (it was removed) the table's scroll region.
      const same = body.querySelector(`[data-wl-remove="${focused}"]`);
      (same || scroller).focus();
    }
  }

  function render(state) {
    FIGURES.forEach((name) => setText(field(name), numberFormat.format(state[name])));
    const mode = state.paused ? "paused" : state.open ? "open" : "idle";
    const badge = field("state");
    setText(badge, cfg[`msgState${mode[0].toUpperCase()}${mode.slice(1)}`]);
    badge.className = `badge wl-state ${mode}`;
    setText(field("state-detail"), cfg[`msgDetail${mode[0].toUpperCase()}${mode.slice(1)}`]);
    setText(pauseButton, state.paused ? cfg.msgResume : cfg.msgPause);
    pauseButton.dataset.paused = String(state.paused);
    drawEntries(state.entries || []);
  }

  function schedule() {
    if (timer) window.clearTimeout(timer);
    const pollMs = Number(cfg.pollMs) || 5000;
    timer = window.setTimeout(refresh, document.visibilityState === "visible" ? pollMs : pollMs * 5);
  }

  async function refresh() {
    if (timer) window.clearTimeout(timer);
    timer = null;
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    try {
      const response = await fetch(cfg.apiUrl, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        cache: "no-store",
      });
      if (!response.ok) throw new Error(String(response.status));
      render(await response.json());
      if (offline) feedback("", "");
      offline = false;
    } catch (error) {
      offline = true;
      feedback(cfg.msgOffline, "error");
    }
    inFlight = false;
    if (again) {
      again = false;
      refresh();
    } else {
      schedule();
    }
  }

  async function send(url, method, payload) {
    const headers = { Accept: "application/json", "X-CSRFToken": csrfToken() };
    if (payload !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers,
      body: payload === undefined ? undefined : JSON.stringify(payload),
    });
    const answer = response.status === 204 ? {} : await response.json().catch(() => ({}));
    return { ok: response.ok, status: response.status, answer };
  }

  function failed(result) {
    const errors = result.answer.errors ? Object.values(result.answer.errors).flat().join(" ") : "";
    feedback(fill(cfg.msgSaveFailed, { detail: errors || result.answer.detail || result.status }), "error");
  }

  pauseButton.addEventListener("click", async () => {
    pauseButton.disabled = true;
    try {
      const result = await send(cfg.apiUrl, "PATCH", { paused: pauseButton.dataset.paused !== "true" });
      if (result.ok) {
        feedback("", "");
        render(result.answer); // the status line (aria-live) says paused or open
      } else {
        failed(result);
      }
    } catch (error) {
      feedback(fill(cfg.msgSaveFailed, { detail: cfg.msgOffline }), "error");
    }
    pauseButton.disabled = false;
  });

  body.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-wl-remove]");
    if (!button || button.disabled) return;
    const email = button.dataset.email;
    if (!window.confirm(fill(cfg.msgRemoveConfirm, { email }))) return;
    button.disabled = true;
    try {
      const result = await send(cfg.entryUrl.replace("{id}", button.dataset.wlRemove), "DELETE");
      if (result.ok) feedback(fill(cfg.msgRemoved, { email }), "ok");
      else failed(result);
    } catch (error) {
      feedback(fill(cfg.msgSaveFailed, { detail: cfg.msgOffline }), "error");
    }
    button.disabled = false;
    refresh();
  });

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refresh();
  });

  refresh();
})();
