// Waiting-list page: the offer's countdown, and while waiting, a quiet check that reloads
// the page when seats are offered. Progressive enhancement: the server-rendered page
// shows the deadline and works without this file. No inline scripts (CSP):
// configuration and translated texts come from data- attributes.
(() => {
  "use strict";

  // Seconds between checks while waiting: an offer also comes by e-mail and with a notice
  // on every page, so this only saves a reload; slow enough to cost the server little.
  const POLL_MS = 20000;

  function announcer(box) {
    return (text, kind) => {
      if (!box || !text) return;
      box.textContent = "";
      box.dataset.kind = kind || "error";
      window.setTimeout(() => {
        box.textContent = text;
      }, 50);
    };
  }

  // The countdown to the offer's deadline (ms, server clock): the page carries the
  // server's "now", so a wrong client clock doesn't shift it.
  function startCountdown(root) {
    const expiresAt = Number(root.dataset.expiresAt);
    const display = root.querySelector('[data-role="countdown"]');
    if (!expiresAt || !display) return;
    const skew = Number(root.dataset.serverNow || Date.now()) - Date.now();
    const announce = announcer(root.querySelector('[data-role="status"]'));
    const accept = root.querySelector('[data-role="accept"]');
    let warned = false;
    let timer = null;
    const tick = () => {
      const left = Math.max(0, Math.round((expiresAt - (Date.now() + skew)) / 1000));
      display.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
      display.classList.toggle("urgent", left <= 60);
      if (left <= 60 && left > 0 && !warned) {
        warned = true;
        announce(root.dataset.msgOneMinute, "warn");
      }
      if (left === 0) {
        window.clearInterval(timer);
        if (accept) accept.disabled = true;
        announce(root.dataset.msgExpired);
      }
    };
    tick();
    timer = window.setInterval(tick, 1000);
  }

  // While waiting: reload when the entry is no longer waiting (an offer came, or staff
  // removed it). Only while the page is visible.
  function watchForOffer(root) {
    const url = root.dataset.statusUrl;
    if (!url) return;
    const check = async () => {
      if (document.visibilityState !== "visible") return;
      try {
        const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (!response.ok) return;
        const body = await response.json();
        if (body.state !== "waiting") {
          window.location.reload();
          return;
        }
        const position = root.querySelector('[data-field="position"]');
        if (position && body.position) position.textContent = String(body.position);
      } catch (error) {
        // Offline for a moment: the next check tries again.
      }
    };
    window.setInterval(check, POLL_MS);
  }

  const root = document.getElementById("waiting-list");
  if (!root) return;
  if (root.dataset.state === "offered") startCountdown(root);
  if (root.dataset.state === "waiting") watchForOffer(root);
})();
