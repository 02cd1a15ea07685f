// Django's admin, as staff use it (templates/admin/base_site.html): the search box that
// select2 draws inside an autocomplete field (door staff of an event) has no label of its
// own (axe-core: "label", critical). It takes the caption of the field it belongs to;
// select2 draws the box again after each choice, hence the observer.
(() => {
  "use strict";

  function labelSearchBoxes() {
    document.querySelectorAll(".select2-search__field:not([aria-label])").forEach((input) => {
      const container = input.closest(".select2-container");
      const select = container && container.previousElementSibling;
      const caption = select && select.id ? document.querySelector(`label[for="${select.id}"]`) : null;
      const text = caption ? caption.textContent.replace(/[:：]\s*$/, "").trim() : "";
      input.setAttribute("aria-label", text || document.title);
    });
  }

  new MutationObserver(labelSearchBoxes).observe(document.documentElement, { childList: true, subtree: true });
  document.addEventListener("DOMContentLoaded", labelSearchBoxes);
})();
