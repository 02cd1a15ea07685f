// Proof of work before joining the waiting room (issue 15). The join form carries an
// invisible ALTCHA widget (static/vendor/altcha/, the package's "external" build: no
// inline styles, no blob workers, so it runs under the site's CSP). As soon as the form
// is shown, the widget fetches a challenge from the server and the browser solves it in
// web workers (SHA-256, static/vendor/altcha/sha.js); the widget then puts the solution
// in a hidden input named "altcha" inside the form. The button reads "Preparing…" until
// then; a buyer who presses it earlier joins by themself as soon as the check is done.
// Loaded as a module after altcha.min.js (modules run in document order), so
// globalThis.$altcha exists here. Texts come from data- attributes (no inline script).
(() => {
  const form = document.querySelector("form[data-pow]");
  if (!form) return;
  const cfg = form.dataset;
  const widget = form.querySelector("altcha-widget");
  const button = form.querySelector("[data-pow-button]");
  const status = form.querySelector("[data-pow-status]");
  const panel = form.closest("[data-panel]");
  const RETRIES = 3; // automatic new attempts after a failure (a busy server at the opening)
  // A challenge lives for minutes on the server. The widget times it out with the
  // device's clock: an "expired" sooner than this after solving means that clock is
  // off, and the server, which decides, is asked instead of solving again and again.
  const MIN_EXPIRY_MS = 60000;

  // preparing: solving (or about to); ready: solved; failed: could not solve;
  // off: the server no longer asks for a proof (staff set the difficulty to 0 meanwhile).
  let phase = "preparing";
  // The buyer pressed the button before the check was done, or has just signed up or
  // logged in from "Get tickets" (data-pow-autojoin, set by the server from a one-time
  // mark in the session): either way the form goes as soon as the check is done.
  let pending = "powAutojoin" in cfg;
  let submitted = false;
  let configured = false;
  let powOff = false;
  let failures = 0;
  let retryTimer = null;
  let solvedAt = 0;

  function show(nextPhase, message) {
    phase = nextPhase;
    form.dataset.powState = nextPhase;
    const label = nextPhase === "ready" || nextPhase === "off" ? cfg.msgJoin : cfg.msgPreparing;
    if (button.textContent !== label) button.textContent = label;
    if (status.textContent !== message) status.textContent = message;
    status.classList.toggle("pow-failed", nextPhase === "failed");
  }

  function preparing() {
    show("preparing", pending ? cfg.msgPending : cfg.msgSolving);
  }

  if (!globalThis.$altcha || !widget || !window.Worker) {
    show("failed", cfg.msgFailed);
    return;
  }
  const workerUrl = cfg.powWorker;
  globalThis.$altcha.algorithms.set("SHA-256", () => new Worker(workerUrl));

  const visible = () => !panel || !panel.hidden;
  const mounted = () => typeof widget.verify === "function";

  function solve() {
    if (retryTimer) window.clearTimeout(retryTimer);
    retryTimer = null;
    if (submitted || !visible() || !mounted()) return;
    preparing();
    widget.verify();
  }

  function submitNow() {
    if (submitted) return;
    if (typeof form.requestSubmit === "function") form.requestSubmit(button);
    else {
      submitted = true;
      form.submit();
    }
  }

  function onStateChange(event) {
    const state = event.detail && event.detail.state;
    if (state === "verifying") {
      preparing();
    } else if (state === "verified") {
      failures = 0;
      solvedAt = Date.now();
      show("ready", cfg.msgReady);
      if (pending) submitNow();
    } else if (state === "error") {
      if (powOff) {
        // 409 pow_not_required: join without a proof.
        show("off", "");
        if (pending) submitNow();
      } else if (failures < RETRIES) {
        failures += 1;
        preparing();
        const delay = 1000 * 2 ** (failures - 1) * (0.75 + Math.random() / 2);
        retryTimer = window.setTimeout(solve, delay);
      } else {
        pending = false;
        show("failed", cfg.msgFailed);
      }
    } else if (state === "expired") {
      // Solved a while ago and the challenge ran out: solve a fresh one. (During solving
      // or just after, see MIN_EXPIRY_MS: the widget keeps its solution, the server decides.)
      if (phase === "ready" && Date.now() - solvedAt >= MIN_EXPIRY_MS) solve();
    }
  }

  // The challenge request goes through here so that a 409 (proof no longer required)
  // can be told apart from a real failure.
  async function challengeFetch(input, init) {
    const response = await fetch(input, { ...init, credentials: "same-origin", cache: "no-store" });
    if (response.status === 409) powOff = true;
    return response;
  }

  // Pressed before the check is done: remember it (and keep the form from going, or from
  // the browser's complaint about the widget's required checkbox while it is verifying).
  button.addEventListener("click", (event) => {
    if (phase === "ready" || phase === "off") return;
    event.preventDefault();
    pending = true;
    if (phase === "failed") {
      failures = 0;
      solve();
    } else {
      preparing();
    }
  });

  form.addEventListener("submit", (event) => {
    if (submitted || (phase !== "ready" && phase !== "off")) {
      event.preventDefault(); // a second press while the next page loads
      return;
    }
    submitted = true;
  });

  function setUp() {
    if (configured || !mounted()) return;
    configured = true;
    widget.configure({ minDuration: 0, fetch: challengeFetch }); // no artificial delay
    widget.addEventListener("statechange", onStateChange);
    solve();
  }

  // The widget's methods exist once it has mounted (its "load" event).
  if (mounted()) setUp();
  else widget.addEventListener("load", setUp);

  // waiting_room.js shows this panel again when the buyer is no longer in line.
  if (panel) {
    new MutationObserver(() => {
      if (!visible() || !configured) return;
      if (phase !== "ready" && phase !== "off" && !retryTimer && widget.getState() !== "verifying") solve();
    }).observe(panel, { attributes: true, attributeFilter: ["hidden"] });
  }

  // Back to this page from the history (bfcache): the solution has been spent and the
  // buyer may be in line by now; the server knows, so load the page again.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) window.location.reload();
  });
})();
