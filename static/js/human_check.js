// The human check before seat selection (issue 15; booking/human_check.py). The page
// carries ALTCHA's "I'm not a robot" checkbox (static/vendor/altcha/, the "external"
// build: no inline styles, no blob workers, so it runs under the site's CSP). Ticking it
// (a click, or Space on the focused box) fetches a challenge and solves it in web workers
// (SHA-256, static/vendor/altcha/sha.js); the widget then puts the answer in a hidden
// input named "altcha" inside the form, and this file posts the form: the seat picker
// opens. The page says so before the box, so opening by itself is no surprise.
// Also shows the time left on the pass (server clock, as the seat picker's countdown).
// Loaded as a module after altcha.min.js (modules run in document order), so
// globalThis.$altcha exists here. Texts come from data- attributes (no inline script).
(() => {
  const root = document.getElementById("human-check");
  if (!root) return;
  const cfg = root.dataset;
  const form = root.querySelector('[data-role="form"]');
  const widget = form.querySelector("altcha-widget");
  const button = form.querySelector('[data-role="continue"]');
  const status = root.querySelector('[data-role="status"]');

  let state = "unverified";
  let submitted = false;
  let passOver = false;

  function say(message, failed) {
    // Cleared first so that the same message twice is announced twice.
    status.textContent = "";
    status.classList.toggle("pow-failed", Boolean(failed));
    if (message) window.setTimeout(() => (status.textContent = message), 50);
  }

  function checkbox() {
    return widget.querySelector('input[type="checkbox"]');
  }

  // --- the pass countdown -------------------------------------------------------------

  const timer = root.querySelector('[data-role="pass-countdown"]');
  const expiresAt = Number(cfg.expiresAt || 0);
  const skew = Number(cfg.serverNow || Date.now()) - Date.now();
  let warned = false;
  let ticker = null;

  function endOfPass() {
    passOver = true;
    window.clearInterval(ticker);
    form.hidden = true;
    root.querySelector('[data-role="pass-over"]').hidden = false;
    say(cfg.msgPassOver, true);
  }

  function tick() {
    const left = Math.max(0, Math.round((expiresAt - (Date.now() + skew)) / 1000));
    timer.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
    timer.classList.toggle("urgent", left <= 60);
    if (left <= 60 && left > 0 && !warned && !submitted) {
      warned = true;
      say(cfg.msgOneMinute);
    }
    if (left === 0 && !submitted) endOfPass();
  }

  if (expiresAt) {
    timer.closest(".js-only").hidden = false;
    tick();
    ticker = window.setInterval(tick, 1000);
  }

  // --- the check ----------------------------------------------------------------------

  if (!globalThis.$altcha || !widget || !window.Worker) {
    say(cfg.msgFailed, true);
    return;
  }
  const workerUrl = cfg.worker;
  globalThis.$altcha.algorithms.set("SHA-256", () => new Worker(workerUrl));

  function submitNow() {
    if (submitted || passOver) return;
    if (typeof form.requestSubmit === "function") form.requestSubmit(button);
    else {
      submitted = true;
      form.submit();
    }
  }

  function onStateChange(event) {
    state = (event.detail && event.detail.state) || state;
    if (passOver) return;
    if (state === "verifying") {
      say(cfg.msgVerifying);
    } else if (state === "verified") {
      say(cfg.msgVerified);
      submitNow();
    } else if (state === "error") {
      say(cfg.msgFailed, true);
    } else if (state === "expired") {
      say(cfg.msgExpired, true);
    }
  }

  async function challengeFetch(input, init) {
    return fetch(input, { ...init, credentials: "same-origin", cache: "no-store" });
  }

  // Pressed before the box is ticked: say so and take the buyer to the box. While the
  // check runs, the form goes by itself when it is done.
  button.addEventListener("click", (event) => {
    if (state === "verified") return;
    event.preventDefault();
    if (state === "verifying") return;
    say(cfg.msgTickFirst, true);
    const box = checkbox();
    if (box) box.focus();
  });

  form.addEventListener("submit", (event) => {
    if (submitted || passOver || state !== "verified") {
      event.preventDefault(); // a second press while the next page loads
      return;
    }
    submitted = true;
  });

  let configured = false;
  function setUp() {
    if (configured || typeof widget.configure !== "function") return;
    configured = true;
    widget.configure({ minDuration: 0, fetch: challengeFetch });
    widget.addEventListener("statechange", onStateChange);
    button.disabled = false;
  }

  // The widget's methods exist once it has mounted (its "load" event).
  if (typeof widget.configure === "function") setUp();
  else widget.addEventListener("load", setUp);

  // Back to this page from the history (bfcache): the answer has been spent and the
  // seats may be open by now; the server knows, so load the page again.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) window.location.reload();
  });
})();
