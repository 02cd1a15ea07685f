// Rush dashboard, "At the door": polls the staff door API and redraws the check-in
// count, the entries per gate and per minute (last two hours, inline SVG bars). The
// first state is rendered by the server; texts come from data- attributes (CSP).
(() => {
  "use strict";

  const root = document.getElementById("door-figures");
  if (!root) return;
  const cfg = root.dataset;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const WIDTH = 300;
  const HEIGHT = 100;
  const MINUTES = 120;
  const numberFormat = new Intl.NumberFormat(document.documentElement.lang || undefined);
  const field = (name) => root.querySelector(`[data-door="${name}"]`);
  const chart = root.querySelector("[data-door-chart]");

  function setText(name, value) {
    const element = field(name);
    if (element) element.textContent = typeof value === "number" ? numberFormat.format(value) : value;
  }

  function drawGates(rows) {
    const body = field("per_gate");
    if (!rows.length) return; // keeps the server's "No entries yet."
    body.replaceChildren(
      ...rows.map((row) => {
        const tr = document.createElement("tr");
        const gate = document.createElement("td");
        gate.textContent = row.gate;
        const count = document.createElement("td");
        count.className = "num";
        count.textContent = numberFormat.format(row.count);
        tr.append(gate, count);
        return tr;
      }),
    );
  }

  function drawChart(points) {
    const end = Math.floor(Date.now() / 60000);
    const counts = new Map(points.map((p) => [Math.floor(Date.parse(p.minute) / 60000), p.count]));
    const max = Math.max(1, ...counts.values());
    const barWidth = WIDTH / MINUTES;
    const bars = [];
    for (let i = 0; i < MINUTES; i += 1) {
      const count = counts.get(end - MINUTES + 1 + i) || 0;
      if (!count) continue;
      const height = (count / max) * HEIGHT;
      const rect = document.createElementNS(SVG_NS, "rect");
      rect.setAttribute("class", "chart-bar");
      rect.setAttribute("x", String(i * barWidth));
      rect.setAttribute("y", String(HEIGHT - height));
      rect.setAttribute("width", String(Math.max(barWidth - 0.5, 0.5)));
      rect.setAttribute("height", String(height));
      bars.push(rect);
    }
    chart.replaceChildren(...bars);
    setText("chart-max", points.length ? cfg.msgPerMinute.replace("{max}", numberFormat.format(max)) : "");
  }

  async function refresh() {
    try {
      const response = await fetch(cfg.apiUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) return;
      const door = await response.json();
      for (const name of ["checked_in", "tickets", "repeat_scans", "conflicts", "undone"]) setText(name, door[name]);
      drawGates(door.per_gate);
      drawChart(door.per_minute);
    } catch (error) {
      // The rush figures above already say when the connection is down.
    }
  }

  refresh();
  setInterval(refresh, Number(cfg.pollMs) || 5000);
})();
