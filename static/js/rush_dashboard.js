// Rush dashboard: polls the staff rush API, draws the last 5 minutes as inline SVG
// (no library), and sends pause/resume, capacity, pass-length and proof-of-work changes (PATCH with
// the session cookie and the CSRF token). Texts come from data- attributes (CSP: no
// inline script, and the template translates them).
(() => {
  "use strict";

  const root = document.getElementById("rush-dashboard");
  if (!root) return;
  const cfg = root.dataset;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const WIDTH = 300;
  const HEIGHT = 100;
  const WINDOW_S = 300;
  const numberFormat = new Intl.NumberFormat(document.documentElement.lang || undefined);
  const rateFormat = new Intl.NumberFormat(document.documentElement.lang || undefined, {
    minimumFractionDigits: 1,
    maximumFractionDigits: 1,
  });
  const form = document.getElementById("rush-controls");
  const pauseButton = form.querySelector('[data-action="toggle-pause"]');
  const capacityInput = form.elements.namedItem("capacity");
  const passInput = form.elements.namedItem("pass_seconds");
  const powInput = form.elements.namedItem("pow_difficulty");
  const reviewInput = form.elements.namedItem("review_threshold");
  const field = (name) => root.querySelector(`[data-field="${name}"]`);
  const fill = (template, values) =>
    template.replace(/\{(\w+)\}/g, (match, key) => (key in values ? String(values[key]) : match));

  let current = null;
  let timer = null;
  let failures = 0;
  let inFlight = false;

  function csrfToken() {
    const input = form.querySelector('input[name="csrfmiddlewaretoken"]');
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : input ? input.value : "";
  }

  function setText(name, text) {
    const element = field(name);
    if (element && element.textContent !== text) element.textContent = text;
  }

  function feedback(text, kind) {
    const element = field("feedback");
    element.textContent = text;
    element.className = `rush-feedback ${kind || ""}`;
  }

  function svgElement(name, attributes) {
    const element = document.createElementNS(SVG_NS, name);
    Object.entries(attributes).forEach(([key, value]) => element.setAttribute(key, String(value)));
    return element;
  }

  // One value per second over the window, oldest first. Seconds without an admission
  // run have no record: the queue length carries over from the previous record (null
  // before the first one: unknown, not drawn), admissions count as 0.
  function series(history, key, carry) {
    const now = Math.floor(Date.now() / 1000);
    const byTime = new Map(history.map((point) => [point.t, point[key]]));
    const values = [];
    let last = null;
    for (let t = now - WINDOW_S + 1; t <= now; t += 1) {
      if (byTime.has(t)) last = byTime.get(t);
      values.push(byTime.has(t) ? byTime.get(t) : carry ? last : 0);
    }
    return values;
  }

  function drawWaiting(svg, values) {
    const known = values.filter((value) => value !== null);
    const max = Math.max(1, ...known);
    const step = WIDTH / (values.length - 1);
    const points = [];
    values.forEach((value, index) => {
      if (value !== null) points.push(`${(index * step).toFixed(1)},${(HEIGHT - (value / max) * (HEIGHT - 4)).toFixed(1)}`);
    });
    const children = [svgElement("line", { class: "chart-axis", x1: 0, y1: HEIGHT, x2: WIDTH, y2: HEIGHT })];
    if (points.length) {
      const firstX = points[0].split(",")[0];
      children.push(
        svgElement("polygon", { class: "chart-area", points: `${firstX},${HEIGHT} ${points.join(" ")} ${WIDTH},${HEIGHT}` }),
        svgElement("polyline", { class: "chart-line", points: points.join(" ") }),
      );
    }
    svg.replaceChildren(...children);
    return max;
  }

  function drawAdmitted(svg, values) {
    const max = Math.max(1, ...values);
    const width = WIDTH / values.length;
    const bars = values
      .map((value, index) => {
        if (!value) return null;
        const height = (value / max) * (HEIGHT - 4);
        return svgElement("rect", {
          class: "chart-bar",
          x: (index * width).toFixed(2),
          y: (HEIGHT - height).toFixed(2),
          width: Math.max(width, 0.8).toFixed(2),
          height: height.toFixed(2),
        });
      })
      .filter(Boolean);
    svg.replaceChildren(svgElement("line", { class: "chart-axis", x1: 0, y1: HEIGHT, x2: WIDTH, y2: HEIGHT }), ...bars);
    return max;
  }

  function render(state) {
    current = state;
    ["waiting", "active", "capacity", "pass_seconds", "admitted_total", "held_seats", "sold_seats"].forEach((name) =>
      setText(name, numberFormat.format(state[name])),
    );
    setText("available_seats", state.available_seats === null ? "–" : numberFormat.format(state.available_seats));
    setText("admitted_per_second", rateFormat.format(state.admitted_per_second));
    setText("shuffle_seed", state.shuffle_seed === null ? "–" : String(state.shuffle_seed));

    const badge = field("state");
    badge.textContent = state.paused ? cfg.msgPaused : cfg.msgRunning;
    badge.classList.toggle("paused", state.paused);
    badge.classList.toggle("running", !state.paused);
    pauseButton.textContent = state.paused ? cfg.msgResume : cfg.msgPause;
    pauseButton.dataset.paused = String(state.paused);

    // Never overwrite what staff are typing.
    if (document.activeElement !== capacityInput && !capacityInput.dataset.dirty) capacityInput.value = state.capacity;
    if (document.activeElement !== passInput && !passInput.dataset.dirty) passInput.value = state.pass_seconds;
    if (document.activeElement !== powInput && !powInput.dataset.dirty) powInput.value = state.pow_difficulty;
    if (document.activeElement !== reviewInput && !reviewInput.dataset.dirty) reviewInput.value = state.review_threshold;

    const history = state.history || [];
    const waitingMax = drawWaiting(root.querySelector('[data-chart="waiting"]'), series(history, "waiting", true));
    const admittedMax = drawAdmitted(root.querySelector('[data-chart="admitted"]'), series(history, "admitted", false));
    setText("chart-waiting-max", fill(cfg.msgChartWaiting, { max: numberFormat.format(waitingMax) }));
    setText("chart-admitted-max", fill(cfg.msgChartAdmitted, { max: numberFormat.format(admittedMax) }));
  }

  function schedule(ms) {
    if (timer) window.clearTimeout(timer);
    timer = window.setTimeout(refresh, ms);
  }

  async function refresh() {
    if (timer) window.clearTimeout(timer);
    timer = null;
    if (inFlight) return;
    inFlight = true;
    try {
      const response = await fetch(cfg.apiUrl, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        cache: "no-store",
      });
      if (!response.ok) throw new Error(String(response.status));
      render(await response.json());
      if (failures) feedback("", "");
      failures = 0;
    } catch (error) {
      failures += 1;
      feedback(cfg.msgOffline, "error");
    }
    inFlight = false;
    const pollMs = Number(cfg.pollMs) || 2000;
    schedule(document.visibilityState === "visible" ? pollMs : pollMs * 5);
  }

  async function patch(changes) {
    try {
      const response = await fetch(cfg.apiUrl, {
        method: "PATCH",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(changes),
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        const fieldErrors = body.errors ? Object.values(body.errors).flat().join(" ") : "";
        feedback(fill(cfg.msgSaveFailed, { detail: fieldErrors || body.detail || response.status }), "error");
        return;
      }
      delete capacityInput.dataset.dirty;
      delete passInput.dataset.dirty;
      delete powInput.dataset.dirty;
      delete reviewInput.dataset.dirty;
      render(body);
      feedback(cfg.msgSaved, "ok");
    } catch (error) {
      feedback(fill(cfg.msgSaveFailed, { detail: cfg.msgOffline }), "error");
    }
  }

  [capacityInput, passInput, powInput, reviewInput].forEach((input) =>
    input.addEventListener("input", () => {
      input.dataset.dirty = "1";
    }),
  );

  pauseButton.addEventListener("click", () => {
    patch({ paused: pauseButton.dataset.paused !== "true" });
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const changes = {};
    const capacity = Number(capacityInput.value);
    const passSeconds = Number(passInput.value);
    if (!current || capacity !== current.capacity) changes.capacity = capacity;
    if (!current || passSeconds !== current.pass_seconds) changes.pass_seconds = passSeconds;
    const pow = Number(powInput.value);
    if (!current || pow !== current.pow_difficulty) changes.pow_difficulty = pow;
    const review = Number(reviewInput.value);
    if (!current || review !== current.review_threshold) changes.review_threshold = review;
    if (Object.keys(changes).length) patch(changes);
  });

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refresh();
  });

  refresh();
})();
