// Seat picker and checkout: live seat map, multi-seat selection, holds through the API,
// and the hold countdown. Progressive enhancement: the server-rendered page works
// without this file (each seat button is a form submit). No inline scripts (CSP):
// configuration and translated strings come from data- attributes.
(() => {
  "use strict";

  const POLL_MS = 2000;
  const SYMBOLS = { available: "", selected: "✓", mine: "★", held: "◐", sold: "✕" };

  function cookie(name) {
    const prefix = name + "=";
    const found = document.cookie.split("; ").find((part) => part.startsWith(prefix));
    return found ? decodeURIComponent(found.slice(prefix.length)) : "";
  }

  function format(template, values) {
    return (template || "").replace(/\{(\w+)\}/g, (match, key) => (key in values ? String(values[key]) : match));
  }

  function capitalised(word) {
    return word.charAt(0).toUpperCase() + word.slice(1);
  }

  // kind: "ok", "warn" or "error" (default): the message's style, besides its words.
  function announcer(box) {
    return (text, kind) => {
      if (!box || !text) return;
      // Clear first so that the same message twice is announced twice.
      box.textContent = "";
      box.dataset.kind = kind || "error";
      window.setTimeout(() => {
        box.textContent = text;
      }, 50);
    };
  }

  // A countdown to a hold's expiry (ms, server clock). The page carries the server's
  // "now" so a wrong client clock doesn't shift the countdown.
  function countdown(root, announce, onExpire) {
    const display = root.querySelector('[data-role="countdown"]');
    const skew = Number(root.dataset.serverNow || Date.now()) - Date.now();
    let timer = null;
    return (expiresAtMs) => {
      window.clearInterval(timer);
      if (!expiresAtMs) {
        if (display) display.textContent = "";
        return;
      }
      let warned = false;
      const tick = () => {
        const left = Math.max(0, Math.round((expiresAtMs - (Date.now() + skew)) / 1000));
        if (display) {
          display.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
          display.classList.toggle("urgent", left <= 60);
        }
        if (left <= 60 && left > 0 && !warned) {
          warned = true;
          announce(root.dataset.msgOneMinute, "warn");
        }
        if (left === 0) {
          window.clearInterval(timer);
          announce(root.dataset.msgExpired);
          onExpire();
        }
      };
      tick();
      timer = window.setInterval(tick, 1000);
    };
  }

  function initPicker(root) {
    const data = root.dataset;
    const form = root.querySelector("#seat-form");
    const buttons = new Map();
    root.querySelectorAll("button.seat[data-seat-id]").forEach((button) => {
      buttons.set(Number(button.dataset.seatId), button);
    });
    const announce = announcer(root.querySelector('[data-role="status"]'));
    const selectionText = root.querySelector('[data-role="selection"]');
    const holdButton = root.querySelector('[data-role="hold-button"]');
    const heldBox = root.querySelector('[data-role="held"]');
    const heldList = root.querySelector('[data-role="held-list"]');
    const numberFormat = new Intl.NumberFormat(document.documentElement.lang || undefined);
    const cap = Number(data.cap || 0);
    let etag = data.etag || "";
    let mine = new Set((data.mine || "").split(",").filter(Boolean).map(Number));
    const selected = new Set();
    const statuses = new Map();
    buttons.forEach((button, id) => statuses.set(id, button.dataset.status));

    root.querySelectorAll(".js-only").forEach((element) => {
      element.hidden = false;
    });

    // Roving tabindex: the map is one Tab stop (a hall has hundreds of seats); arrow keys
    // move inside it, and the seat last visited is where Tab comes back to.
    let rover = null;
    function setRover(button) {
      if (rover === button) return;
      if (rover) rover.tabIndex = -1;
      rover = button;
      rover.tabIndex = 0;
    }
    buttons.forEach((button) => {
      button.tabIndex = -1;
    });
    const firstFree = [...buttons.values()].find((button) => button.dataset.status === "available");
    if (firstFree || buttons.size) setRover(firstFree || buttons.values().next().value);
    form.addEventListener("focusin", (event) => {
      const button = event.target.closest("button.seat");
      if (button) setRover(button);
    });

    // "55,000 KRW" / "55,000원": the unit's place differs by language.
    function priceText(price) {
      return format(data.priceTemplate, { price: numberFormat.format(Number(price)) });
    }

    function seatName(id) {
      const button = buttons.get(id);
      if (!button) return String(id);
      return format(data.heldTemplate, {
        section: button.dataset.section,
        row: button.dataset.row,
        number: button.dataset.number,
      });
    }

    function stateOf(id) {
      const status = statuses.get(id) || "sold";
      if (mine.has(id) && status !== "sold") return "mine";
      if (selected.has(id)) return "selected";
      return status;
    }

    function render(id) {
      const button = buttons.get(id);
      if (!button) return;
      const state = stateOf(id);
      const selectable = state === "available" || state === "selected";
      button.className = "seat is-" + state;
      button.querySelector(".seat-symbol").textContent = SYMBOLS[state] || "";
      const label = format(data.labelTemplate, {
        section: button.dataset.section,
        row: button.dataset.row,
        number: button.dataset.number,
        price: priceText(button.dataset.price),
      });
      button.setAttribute("aria-label", label + ", " + (data["status" + capitalised(state)] || state));
      // Focusable in every state (announced with its status); only free seats act.
      button.disabled = false;
      button.setAttribute("aria-disabled", selectable ? "false" : "true");
      if (selectable) button.setAttribute("aria-pressed", state === "selected" ? "true" : "false");
      else button.removeAttribute("aria-pressed");
    }

    function renderAll() {
      buttons.forEach((button, id) => render(id));
    }

    function updateSelection() {
      if (selectionText) {
        selectionText.textContent = format(data.msgSelected, { count: selected.size + mine.size, cap });
      }
      if (holdButton) holdButton.disabled = selected.size === 0;
    }

    function updateHeld() {
      if (!heldBox || !heldList) return;
      heldList.textContent = "";
      [...mine].sort((a, b) => a - b).forEach((id) => {
        const button = buttons.get(id);
        const item = document.createElement("li");
        item.textContent = seatName(id) + (button ? " · " + priceText(button.dataset.price) : "");
        heldList.appendChild(item);
      });
      heldBox.hidden = mine.size === 0;
    }

    const setExpiry = countdown(root, announce, () => {
      mine = new Set();
      etag = "";
      renderAll();
      updateHeld();
      updateSelection();
    });

    function flashTaken(ids) {
      ids.forEach((id) => {
        const button = buttons.get(id);
        if (!button) return;
        button.classList.add("just-taken");
        window.setTimeout(() => button.classList.remove("just-taken"), 4000);
      });
    }

    form.addEventListener("click", (event) => {
      const button = event.target.closest("button.seat");
      if (!button) return;
      event.preventDefault();
      const id = Number(button.dataset.seatId);
      const state = stateOf(id);
      if (state === "selected") {
        selected.delete(id);
      } else if (state === "available") {
        if (selected.size + mine.size >= cap) {
          announce(format(data.msgCap, { cap }));
          return;
        }
        selected.add(id);
      } else {
        return;
      }
      render(id);
      updateSelection();
    });

    // Arrow keys move between seats (left/right in a row, up/down across rows).
    form.addEventListener("keydown", (event) => {
      const button = event.target.closest("button.seat");
      if (!button) return;
      const row = button.closest(".seat-row");
      const rowButtons = [...row.querySelectorAll("button.seat")];
      const index = rowButtons.indexOf(button);
      let target = null;
      if (event.key === "ArrowLeft") target = rowButtons[index - 1];
      else if (event.key === "ArrowRight") target = rowButtons[index + 1];
      else if (event.key === "Home") target = rowButtons[0];
      else if (event.key === "End") target = rowButtons[rowButtons.length - 1];
      else if (event.key === "ArrowUp" || event.key === "ArrowDown") {
        const rows = [...form.querySelectorAll(".seat-row")];
        const next = rows[rows.indexOf(row) + (event.key === "ArrowUp" ? -1 : 1)];
        if (next) {
          const nextButtons = [...next.querySelectorAll("button.seat")];
          target = nextButtons[Math.min(index, nextButtons.length - 1)];
        }
      }
      if (target) {
        event.preventDefault();
        target.focus();
      }
    });

    async function hold() {
      if (selected.size === 0) {
        announce(data.msgNone);
        return;
      }
      holdButton.disabled = true;
      try {
        const response = await fetch(data.holdsUrl, {
          method: "POST",
          credentials: "same-origin",
          headers: {
            "Content-Type": "application/json",
            Accept: "application/json",
            "X-CSRFToken": cookie("csrftoken"),
          },
          body: JSON.stringify({ seat_ids: [...selected] }),
        });
        const body = await response.json().catch(() => ({}));
        if (response.status === 201) {
          selected.clear();
          mine = new Set(body.seat_ids);
          mine.forEach((id) => statuses.set(id, "held"));
          setExpiry(body.expires_at ? Date.parse(body.expires_at) : 0);
          renderAll();
          updateHeld();
          announce(data.msgHeld, "ok");
        } else if (response.status === 409 && body.code === "seat_unavailable") {
          const taken = (body.seat_ids || []).map(Number);
          taken.forEach((id) => {
            selected.delete(id);
            if (statuses.get(id) === "available") statuses.set(id, "held");
          });
          renderAll();
          flashTaken(taken);
          announce(format(data.msgTaken, { seats: taken.map(seatName).join(", ") }));
        } else if (response.status === 403) {
          announce(data.msgNotAdmitted);
          window.setTimeout(() => window.location.assign(data.queueUrl), 3000);
        } else {
          announce(body.detail || data.msgError);
        }
      } catch (error) {
        announce(data.msgError);
      } finally {
        updateSelection();
        etag = "";
      }
    }

    async function poll() {
      if (!document.hidden) {
        try {
          const headers = { Accept: "application/json" };
          if (etag) headers["If-None-Match"] = etag;
          const response = await fetch(data.seatsUrl, { credentials: "same-origin", cache: "no-store", headers });
          if (response.status === 200) {
            etag = response.headers.get("ETag") || "";
            const body = await response.json();
            const lost = [];
            body.seats.forEach((seat) => {
              statuses.set(seat.id, seat.status);
              if (selected.has(seat.id) && seat.status !== "available") {
                selected.delete(seat.id);
                lost.push(seat.id);
              }
            });
            renderAll();
            updateSelection();
            if (lost.length) {
              flashTaken(lost);
              announce(format(data.msgTaken, { seats: lost.map(seatName).join(", ") }));
            }
          }
        } catch (error) {
          // Network hiccup: keep the last known map and try again on the next tick.
        }
      }
      window.setTimeout(poll, POLL_MS);
    }

    if (holdButton) holdButton.addEventListener("click", hold);
    renderAll();
    updateSelection();
    setExpiry(Number(data.expiresAt || 0));
    window.setTimeout(poll, POLL_MS);
  }

  function initCheckout(root) {
    const announce = announcer(root.querySelector('[data-role="status"]'));
    const submit = root.querySelector('.checkout-form button[type="submit"]');
    const setExpiry = countdown(root, announce, () => {
      if (submit) submit.disabled = true;
    });
    setExpiry(Number(root.dataset.expiresAt || 0));
  }

  const picker = document.getElementById("seat-picker");
  if (picker) initPicker(picker);
  const checkout = document.getElementById("checkout");
  if (checkout) initCheckout(checkout);
})();
