// The busy page (templates/503.html) tries again by itself after a few seconds, as its
// <meta http-equiv="refresh"> did, with a button to stop that: each reload sends a screen
// reader back to the top of the page (WCAG 2.2.1, a timed reload must be possible to turn
// off). Without JavaScript the page has its "Try again" link.
(() => {
  const box = document.querySelector("[data-busy-retry]");
  if (!box) return;
  const stop = box.querySelector('[data-action="stop-retry"]');
  const stopped = box.querySelector('[data-field="retry-stopped"]');
  // A GET of the same address, as the meta refresh did (a reload would re-send a POST).
  const timer = window.setTimeout(() => window.location.replace(window.location.href), Number(box.dataset.seconds) * 1000);
  stop.hidden = false;
  stop.addEventListener("click", () => {
    window.clearTimeout(timer);
    stop.hidden = true;
    stopped.hidden = false;
  });
})();
