// Seat picker and checkout. On the seat picker the buyer chooses seats here, in the
// browser; "Next" asks the server to keep them all (one all-or-nothing hold through the
// holds API) and goes on to checkout. A seat someone else took first is named, and the
// buyer picks again. Each page shows one clock: the time left to choose seats (the
// buyer's turn) on the seat picker, the time left to pay (the seats' deadline) at
// checkout. Progressive enhancement: the server-rendered pages work without this file
// (each seat button is a form submit). No inline scripts (CSP): configuration and
// translated strings come from data- attributes.
(() => {
  "use strict";

  const POLL_MS = 2000;
  const SYMBOLS = { available: "", selected: "✓", held: "◐", sold: "✕" };

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

  // A countdown to a deadline (ms, server clock). The page carries the server's "now"
  // so a wrong client clock doesn't shift the countdown.
  function countdown(root, announce, onExpire) {
    const display = root.querySelector('[data-role="countdown"]');
    const skew = Number(root.dataset.serverNow || Date.now()) - Date.now();
    let timer = null;
    return (expiresAtMs) => {
      window.clearInterval(timer);
      if (!expiresAtMs) return;
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

  async function sendJson(url, method, body) {
    const response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": cookie("csrftoken"),
      },
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    return { status: response.status, body: answer };
  }

  function initPicker(root) {
    const data = root.dataset;
    const form = root.querySelector("#seat-form");
    const buttons = new Map();
    root.querySelectorAll("button.seat[data-seat-id]").forEach((button) => {
      buttons.set(Number(button.dataset.seatId), button);
    });
    const statusBox = root.querySelector('[data-role="status"]');
    const announce = announcer(statusBox);
    const selectionText = root.querySelector('[data-role="selection"]');
    const totalText = root.querySelector('[data-role="total"]');
    const nextButton = root.querySelector('[data-role="next"]');
    const chosenList = root.querySelector('[data-role="held-list"]');
    const numberFormat = new Intl.NumberFormat(document.documentElement.lang || undefined);
    const cap = Number(data.cap || 0);
    let etag = data.etag || "";
    // Seats the server keeps for this buyer now (back from checkout to change seats).
    let mine = new Set((data.mine || "").split(",").filter(Boolean).map(Number));
    // The buyer's choice; the seats already kept start chosen.
    const selected = new Set(mine);
    const statuses = new Map();
    let busy = false;
    let turnOver = false;
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
      if (selected.has(id) && status !== "sold") return "selected";
      // One of the buyer's own kept seats, no longer chosen: free to choose again.
      if (mine.has(id) && status === "held") return "available";
      return status;
    }

    function render(id) {
      const button = buttons.get(id);
      if (!button) return;
      const state = stateOf(id);
      const selectable = state === "available" || state === "selected";
      const tone = [...button.classList].find((name) => name.startsWith("tone-"));
      button.className = "seat is-" + state + (tone ? " " + tone : "");
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

    // The panel: the chosen seats with their prices, how many of the cap, the total.
    function updateSelection() {
      const chosen = [...selected].sort((a, b) => a - b);
      if (chosenList) {
        chosenList.textContent = "";
        chosen.forEach((id) => {
          const button = buttons.get(id);
          const item = document.createElement("li");
          item.textContent = seatName(id) + (button ? " · " + priceText(button.dataset.price) : "");
          chosenList.appendChild(item);
        });
      }
      if (selectionText) selectionText.textContent = format(data.msgSelected, { count: chosen.length, cap });
      if (totalText) {
        const total = chosen.reduce((sum, id) => sum + Number((buttons.get(id) || {}).dataset?.price || 0), 0);
        totalText.textContent = format(data.msgTotal, { total: priceText(total) });
        totalText.hidden = chosen.length === 0;
      }
    }

    function flashTaken(ids) {
      ids.forEach((id) => {
        const button = buttons.get(id);
        if (!button) return;
        button.classList.add("just-taken");
        window.setTimeout(() => button.classList.remove("just-taken"), 4000);
      });
    }

    function sameAsKept() {
      return selected.size === mine.size && [...selected].every((id) => mine.has(id));
    }

    // The buyer's turn has ended: with seats already kept, checkout still takes them (its
    // own clock); otherwise back to the waiting room.
    function endOfTurn() {
      turnOver = true;
      window.setTimeout(() => window.location.assign(mine.size ? data.checkoutUrl : data.queueUrl), 4000);
    }

    form.addEventListener("click", (event) => {
      const button = event.target.closest("button.seat");
      if (!button) return;
      event.preventDefault();
      if (busy) return;
      const id = Number(button.dataset.seatId);
      const state = stateOf(id);
      if (state === "selected") {
        selected.delete(id);
      } else if (state === "available") {
        if (selected.size >= cap) {
          announce(format(data.msgCap, { cap }));
          return;
        }
        selected.add(id);
      } else {
        return;
      }
      // The buyer has acted on the last message (a seat taken, say): on a phone it sits
      // in the bar over the map, so it goes.
      if (statusBox) statusBox.textContent = "";
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

    // "Next": give back the kept seats the buyer no longer wants, keep the chosen ones
    // (all or none), then checkout.
    async function next() {
      if (busy) return;
      if (selected.size === 0) {
        announce(data.msgNone);
        return;
      }
      if (sameAsKept()) {
        window.location.assign(data.checkoutUrl);
        return;
      }
      if (turnOver) {
        announce(data.msgNotAdmitted);
        return;
      }
      busy = true;
      nextButton.setAttribute("aria-disabled", "true");
      announce(data.msgSaving, "ok");
      try {
        const unwanted = [...mine].filter((id) => !selected.has(id));
        if (unwanted.length) {
          const given = await sendJson(data.holdsUrl, "DELETE", { seat_ids: unwanted });
          if (given.status !== 204) throw new Error("release " + given.status);
          unwanted.forEach((id) => {
            mine.delete(id);
            statuses.set(id, "available");
          });
        }
        const { status, body } = await sendJson(data.holdsUrl, "POST", { seat_ids: [...selected] });
        if (status === 201) {
          mine = new Set(body.seat_ids);
          window.location.assign(data.checkoutUrl);
          return; // stays busy while the next page loads
        }
        if (status === 409 && body.code === "seat_unavailable") {
          const taken = (body.seat_ids || []).map(Number);
          taken.forEach((id) => {
            selected.delete(id);
            if (statuses.get(id) === "available" || mine.has(id)) statuses.set(id, "held");
            mine.delete(id);
          });
          renderAll();
          updateSelection();
          flashTaken(taken);
          announce(format(data.msgTaken, { seats: taken.map(seatName).join(", ") }));
        } else if (status === 400 && body.code === "limit_exceeded") {
          announce(format(data.msgCap, { cap: body.limit ?? cap }));
        } else if (status === 403 && body.code === "human_check_required") {
          window.location.reload(); // the page asks for the check first
        } else if (status === 403) {
          announce(data.msgNotAdmitted);
          window.setTimeout(() => window.location.assign(data.queueUrl), 3000);
        } else {
          announce(body.detail || data.msgError);
        }
      } catch (error) {
        announce(data.msgError);
      }
      busy = false;
      nextButton.removeAttribute("aria-disabled");
      etag = "";
    }

    async function poll() {
      if (!document.hidden && !busy) {
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
              // A chosen seat someone else has taken meanwhile (the buyer's own kept
              // seats read "held" too, and stay chosen).
              if (selected.has(seat.id) && seat.status !== "available" && !mine.has(seat.id)) {
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

    // A row wider than a phone (seats never shrink below a 24px target) scrolls inside
    // the map: say so rather than leave the buyer to find out.
    const scrollHint = root.querySelector('[data-role="scroll-hint"]');
    function checkOverflow() {
      if (!scrollHint) return;
      const overflowing = form.scrollWidth > form.clientWidth + 1;
      scrollHint.hidden = !overflowing;
      scrollHint.textContent = overflowing ? data.msgScroll : "";
    }
    window.addEventListener("resize", checkOverflow);

    if (nextButton) {
      nextButton.addEventListener("click", (event) => {
        event.preventDefault(); // without this file the button submits the form
        next();
      });
    }
    const setTurnClock = countdown(root, announce, endOfTurn);
    renderAll();
    updateSelection();
    checkOverflow();
    setTurnClock(Number(data.expiresAt || 0));
    window.setTimeout(poll, POLL_MS);
  }

  function initCheckout(root) {
    const announce = announcer(root.querySelector('[data-role="status"]'));
    const pay = root.querySelector('[data-role="pay"]');
    const setPayClock = countdown(root, announce, () => {
      if (pay) pay.disabled = true;
      const change = root.querySelector('[data-role="change-seats"]');
      if (change) change.classList.add("button", "primary");
    });
    setPayClock(Number(root.dataset.expiresAt || 0));
  }

  const picker = document.getElementById("seat-picker");
  if (picker) initPicker(picker);
  const checkout = document.getElementById("checkout");
  if (checkout) initCheckout(checkout);
})();
