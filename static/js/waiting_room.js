// Waiting room: follows the queue status API at the interval the server suggests
// (poll_after_ms), moves on to seat selection when admitted. Each poll sends the queue
// ticket of the last answer (X-Queue-Ticket): from far back the server answers it from
// the serving cursor, without looking the buyer up. Configuration and every visible text
// come from data- attributes of #waiting-room (no inline script: CSP).
(() => {
  "use strict";

  const root = document.getElementById("waiting-room");
  if (!root) return;
  const cfg = root.dataset;
  const field = (name) => root.querySelector(`[data-field="${name}"]`);
  const panels = root.querySelectorAll("[data-panel]");
  const numberFormat = new Intl.NumberFormat(document.documentElement.lang || undefined);
  const MIN_POLL_MS = 1000;
  const MAX_POLL_MS = 30000;
  const startKey = `queue-start-position:${cfg.eventId}`;

  let state = cfg.state;
  let ticket = cfg.queueTicket || "";
  let estimated = cfg.estimated === "1";
  let timer = null;
  let failures = 0;
  let stopped = false;
  let inFlight = false;

  const fill = (template, values) =>
    template.replace(/\{(\w+)\}/g, (match, key) => (key in values ? String(values[key]) : match));

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function etaText(seconds) {
    if (seconds === null || seconds === undefined) return cfg.msgEtaUnknown;
    if (seconds < 60) return cfg.msgEtaSoon;
    const minutes = Math.ceil(seconds / 60);
    if (minutes < 60) return fill(cfg.msgEtaMinutes, { n: minutes });
    return fill(cfg.msgEtaHours, { h: Math.floor(minutes / 60), m: minutes % 60 });
  }

  // The progress bar measures from where this buyer started: the server remembers the
  // place at joining; the browser keeps the largest place it has seen as a fallback
  // (the opening draw may move an early arrival back).
  function startPosition(position) {
    let start = Number(cfg.startPosition) || Number(sessionStorage.getItem(startKey)) || position;
    if (position > start) start = position;
    try {
      sessionStorage.setItem(startKey, String(start));
    } catch (error) {
      // Private mode without storage: the bar then starts at the current place.
    }
    return start;
  }

  function showPanel(name) {
    panels.forEach((panel) => {
      const preopen = panel.dataset.panel === "preopen";
      if (!preopen) panel.hidden = panel.dataset.panel !== name;
    });
  }

  function setText(name, text) {
    const element = field(name);
    if (element && element.textContent !== text) element.textContent = text;
  }

  function render(body) {
    state = body.state;
    root.dataset.state = state;
    showPanel(state);
    const preopen = root.querySelector('[data-panel="preopen"]');
    if (preopen && body.sales_open_at) preopen.hidden = Date.parse(body.sales_open_at) <= Date.now();

    if (body.queue_ticket) ticket = body.queue_ticket;
    estimated = Boolean(body.estimated);
    showPaused(state === "waiting" && Boolean(body.paused));
    if (state === "waiting") {
      const about = (n) => (estimated ? fill(cfg.msgAbout, { n: numberFormat.format(n) }) : numberFormat.format(n));
      setText("position", about(body.position));
      setText("ahead", about(body.ahead));
      setText("eta", body.paused ? cfg.msgEtaPaused : etaText(body.eta_seconds));
      const start = startPosition(body.position);
      const percent = start > 1 ? Math.round(((start - body.position) / (start - 1)) * 100) : 100;
      const bar = field("progress");
      bar.value = percent;
      bar.textContent = `${percent}%`;
      setText("progress-text", fill(cfg.msgProgress, { percent }));
    } else if (state === "active") {
      if (body.pass_expires_at) {
        const until = new Date(body.pass_expires_at).toLocaleTimeString(document.documentElement.lang || undefined);
        setText("pass-until", fill(cfg.msgPassUntil, { time: until }));
      }
      stop();
      // A moment to read "It's your turn!", then on to the seat picker.
      window.setTimeout(() => window.location.assign(cfg.pickUrl), 800);
    } else if (state === "sold_out") {
      stop();
    }
  }

  // Staff paused admission: the notice says so and that the place is kept (the texts
  // are the page's; only the one for a buyer in line applies while polling).
  function showPaused(paused) {
    const notice = field("paused");
    if (!notice) return;
    notice.hidden = !paused;
    notice.querySelectorAll("[data-paused-for]").forEach((line) => {
      line.hidden = line.dataset.pausedFor !== "waiting";
    });
  }

  function stop() {
    stopped = true;
    if (timer) window.clearTimeout(timer);
    timer = null;
  }

  function schedule(ms) {
    if (stopped) return;
    if (timer) window.clearTimeout(timer);
    // +-10% jitter so a crowd that joined in the same second does not poll in lockstep.
    const jittered = ms * (0.9 + Math.random() * 0.2);
    timer = window.setTimeout(poll, Math.min(Math.max(jittered, MIN_POLL_MS), MAX_POLL_MS));
  }

  async function ticketRefused(response) {
    try {
      const body = await response.clone().json();
      return typeof body.code === "string" && body.code.startsWith("queue_ticket_");
    } catch (error) {
      return false;
    }
  }

  function retryAfterMs(response, fallback) {
    const seconds = Number(response.headers.get("Retry-After"));
    return seconds > 0 ? seconds * 1000 : fallback;
  }

  async function poll() {
    if (timer) window.clearTimeout(timer);
    timer = null;
    if (stopped || inFlight) return;
    let response;
    inFlight = true;
    const headers = { Accept: "application/json", "X-CSRFToken": csrfToken() };
    if (ticket) headers["X-Queue-Ticket"] = ticket;
    try {
      response = await fetch(cfg.statusUrl, { credentials: "same-origin", headers, cache: "no-store" });
    } catch (error) {
      inFlight = false;
      failures += 1;
      setText("connection", cfg.msgOffline);
      schedule(Math.min(MIN_POLL_MS * 2 ** failures, MAX_POLL_MS));
      return;
    }
    inFlight = false;
    if (response.ok) {
      failures = 0;
      setText("connection", "");
      let body;
      try {
        body = await response.json();
      } catch (error) {
        failures += 1;
        setText("connection", cfg.msgBusy);
        schedule(Math.min(MIN_POLL_MS * 2 ** failures, MAX_POLL_MS));
        return;
      }
      render(body);
      schedule(body.poll_after_ms || Number(cfg.pollMs));
    } else if (response.status === 404) {
      // No longer in line (left in another tab, or taken off the line when the turn came
      // and the page was closed): say so, and offer to join again.
      setText("connection", state === "waiting" ? cfg.msgLeftLine : "");
      state = "none";
      showPaused(false);
      showPanel("none");
      stop();
    } else if ((response.status === 401 || response.status === 403) && ticket && (await ticketRefused(response))) {
      // An old or foreign ticket: ask once without it; that answer carries a new one.
      ticket = "";
      schedule(0);
    } else if (response.status === 401 || response.status === 403) {
      setText("connection", cfg.msgLoggedOut);
      stop();
    } else {
      failures += 1;
      setText("connection", cfg.msgBusy);
      schedule(retryAfterMs(response, Math.min(MIN_POLL_MS * 2 ** failures, MAX_POLL_MS)));
    }
  }

  // Background tabs get their timers throttled: catch up as soon as the tab is visible.
  document.addEventListener("visibilitychange", () => {
    const following = state === "waiting" || state === "active" || state === "review";
    if (document.visibilityState === "visible" && !stopped && following) {
      poll();
    }
  });

  if (state === "waiting") {
    // The page arrived with fresh figures: the first poll waits the suggested interval.
    startPosition(Number(field("position").textContent.replace(/\D/g, "")) || 1);
    schedule(Number(cfg.pollMs));
  } else if (state === "active") {
    render({ state: "active" });
  } else if (state === "review") {
    // Held for review: the server tells when staff let this network through.
    schedule(Number(cfg.pollMs));
  }
})();
