/* Vetting page (pages/vetting.py): keyboard shortcuts and the clientside callbacks behind them.
 *
 * A document keydown listener (active only while the page's #vetting-pairs is shown, and not
 * while typing in a field or with a dialog open) and a click listener on the thumbs buttons
 * put {key, index?, t} into the dcc.Store "vetting-key"; dash_clientside.vetting.on_key turns
 * that into a cursor move or a judgment appended to the "vetting-outbox" store, which the
 * server stores (pages.vetting.store_judgments) and acknowledges by "t".
 *
 * Keys: j / ArrowDown next pair, k / ArrowUp previous pair, 1 thumbs up, 2 thumbs down (the
 * reason chosen on the card, "other" by default), 3-9 thumbs down with a reason:
 * 3 wrong category, 4 wrong gender, 5 adult or unsafe, 6 brand clash, 7 price mismatch,
 * 8 duplicate, 9 other. After a judgment the focus moves on to the next pair; r opens the
 * focused pair's "Rule…" dialog. Viewers (the shell's
 * role-viewer class) can move but not judge: a judging key turns the viewer note into
 * "Not judged: ...".
 */
(function () {
  "use strict";
  var REASONS = ["wrong_category", "wrong_gender", "adult_or_unsafe", "brand_clash",
                 "price_mismatch", "duplicate", "other"];
  var KEY_RE = /^(?:[jk1-9]|ArrowDown|ArrowUp)$/;
  var counter = 0;

  /* Key events wait here until on_key takes them: Dash may run one callback for several quick
   * changes of "vetting-key", so the store only says "there is something new". The cursor and
   * the outbox of judgments not yet stored are kept here too (their stores mirror them), so a
   * callback run never works on a value an earlier run has not yet written back. */
  var pending = [];
  var outbox = [];
  var cursorOf = {loaded: null, index: 0};

  function send(payload) {
    var dc = window.dash_clientside;
    if (!dc || !dc.set_props) { return; }
    counter += 1;
    payload.t = Date.now() + "-" + counter;
    pending.push(payload);
    dc.set_props("vetting-key", {data: counter});
  }

  /* a viewer's 1-9 judged nothing and showed nothing: the viewer note says it was refused */
  function refuseNote() {
    var dc = window.dash_clientside;
    if (!dc || !dc.set_props || !document.getElementById("vetting-viewer-note")) { return; }
    dc.set_props("vetting-viewer-note", {
      children: "Not judged: you are signed in as a viewer. j / k move through the queue; judging, " +
                "building queues, importing and adding rules need the editor role.",
      className: "small alert alert-warning py-1 px-2 mb-2 viewer-only vet-refused"
    });
  }

  /* the seed group of pair ``index``: starts holds each group's first index, then n */
  function groupOf(starts, index) {
    var lo = 0, hi = starts.length - 2;
    while (lo < hi) {
      var mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= index) { lo = mid; } else { hi = mid - 1; }
    }
    return Math.max(0, lo);
  }

  /* the drawn card of pair ``index`` of ``queue`` (not a card of the queue shown before it) */
  function cardOf(queue, index) {
    var el = pairEl(index);
    return el && el.getAttribute("data-queue") === queue.id ? el : null;
  }

  function pairEl(index) {
    return document.querySelector('.vet-pair[data-index="' + index + '"]');
  }

  function focusPair(index) {
    var old = document.querySelectorAll(".vet-pair.vet-focused");
    for (var i = 0; i < old.length; i++) { old[i].classList.remove("vet-focused"); }
    var el = pairEl(index);
    if (el) {
      el.classList.add("vet-focused");
      if (el.scrollIntoView) { el.scrollIntoView({block: "nearest"}); }
      /* the keyboard focus follows: a dropdown picked a moment ago (run, preset, saved queue)
       * would otherwise keep it and take the next key as a search; a field being typed in keeps it */
      if (!isTyping(document.activeElement) && !document.querySelector(".modal.show") && el.focus) {
        el.focus({preventScroll: true});
      }
    }
  }

  /* a field that takes typed keys (not the read-only focus catcher of a closed dropdown) */
  function isTyping(t) {
    if (!t) { return false; }
    if (t.isContentEditable || t.tagName === "TEXTAREA" || t.tagName === "SELECT") { return true; }
    return t.tagName === "INPUT" && !t.readOnly;
  }

  function mark(el, verdict, reason) {
    if (!el) { return; }
    el.classList.remove("vet-up", "vet-down");
    el.classList.add(verdict > 0 ? "vet-up" : "vet-down");
    el.setAttribute("data-verdict", verdict > 0 ? "up" : "down");
    var tag = el.querySelector(".vet-verdict");
    if (tag) { tag.textContent = verdict > 0 ? "✓ good" : "✗ " + String(reason).replace(/_/g, " "); }
    el.setAttribute("data-reason", verdict > 0 ? "" : reason);
    showReason(el);
  }

  /* the card's reason select shows the pair's thumbs-down reason (stored or just given), so a
   * later "2" keeps it rather than falling back to "other" */
  function showReason(el) {
    var reason = el && el.getAttribute("data-reason");
    var sel = el && el.querySelector("select.vet-reason");
    if (sel && reason) { sel.value = reason; }
  }

  /* Listened in the capture phase: a closed dropdown that keeps the focus after a pick (run,
   * preset, saved queue) would otherwise open its search on "1" and swallow every later key. */
  document.addEventListener("keydown", function (ev) {
    if (!document.getElementById("vetting-pairs")) { return; }
    if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat) { return; }
    var t = ev.target;
    if (document.querySelector(".modal.show")) { return; }
    if (t && t.closest && t.closest(".vet-note") && (ev.key === "Enter" || ev.key === "Escape")) {
      /* the note is written: back to the pair, so 1 / 2 judge it with the note */
      var own = t.closest(".vet-pair[data-index]");
      ev.preventDefault();
      if (own) {  /* the cursor too: the next 1 / 2 judges this pair, not the one it was on */
        own.focus({preventScroll: true});
        send({key: "focus", index: parseInt(own.getAttribute("data-index"), 10)});
      }
      return;
    }
    if (isTyping(t)) { return; }
    var trigger = t && t.closest && t.closest(".dash-dropdown-wrapper");
    if (trigger && !/^[jkr1-9]$/.test(ev.key)) { return; }  /* arrows, Enter, Space open the dropdown */
    if (ev.key === "r") {  /* the focused pair's "Rule…" dialog */
      var rule = document.querySelector(".vet-pair.vet-focused button[id*='vetting-propose']");
      if (rule) { ev.preventDefault(); ev.stopPropagation(); rule.click(); }
      return;
    }
    if (!KEY_RE.test(ev.key)) { return; }
    ev.preventDefault();
    if (trigger) { ev.stopPropagation(); }
    send({key: ev.key});
  }, true);

  /* ...and its key-up: a closed dropdown opens its search on the key-up of a letter or digit */
  document.addEventListener("keyup", function (ev) {
    if (!document.getElementById("vetting-pairs") || document.querySelector(".modal.show")) { return; }
    var t = ev.target;
    if (t && t.closest && t.closest(".dash-dropdown-wrapper") && !isTyping(t) && /^[jkr1-9]$/.test(ev.key)) {
      ev.stopPropagation();
    }
  }, true);

  /* a reason chosen with the mouse: the focus goes back to its pair, so the next key judges */
  document.addEventListener("change", function (ev) {
    var t = ev.target;
    if (!t || !t.classList || !t.classList.contains("vet-reason")) { return; }
    var own = t.closest(".vet-pair[data-index]");
    if (own) { own.focus({preventScroll: true}); }
  });

  document.addEventListener("click", function (ev) {
    if (!ev.target || !ev.target.closest) { return; }
    var pair = ev.target.closest(".vet-pair[data-index]");
    if (!pair) { return; }
    var index = parseInt(pair.getAttribute("data-index"), 10);
    var vote = ev.target.closest("[data-vote]");
    if (vote) {
      send({key: vote.getAttribute("data-vote") === "up" ? "1" : "2", index: index});
    } else if (!ev.target.closest("select, input, button, a")) {
      send({key: "focus", index: index});
    }
  });

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    vetting: {
      /* vetting-key -> [cursor, group, outbox]: every waiting key event, in order */
      on_key: function (_tick, queue, cursor, group) {
        var nu = window.dash_clientside.no_update;
        var events = pending.splice(0, pending.length);
        if (!events.length || !queue || !queue.n || !queue.starts) { return [nu, nu, nu]; }
        var n = queue.n, judged = false, refused = false;
        if (cursorOf.loaded !== queue.loaded) { cursorOf = {loaded: queue.loaded, index: cursor || 0}; }
        var next = cursorOf.index;
        for (var e = 0; e < events.length; e++) {
          var ev = events[e];
          var i = Math.max(0, Math.min(n - 1, typeof ev.index === "number" ? ev.index : next));
          var key = ev.key;
          next = i;
          if (key === "j" || key === "ArrowDown") {
            next = Math.min(n - 1, i + 1);
          } else if (key === "k" || key === "ArrowUp") {
            next = Math.max(0, i - 1);
          } else if (/^[1-9]$/.test(key) && document.querySelector(".role-viewer")) {
            refused = true;  /* a viewer's judgment: not stored, and said so (below) */
          } else if (/^[1-9]$/.test(key) && !cardOf(queue, i)) {
            /* the pair judged is read off its card (the browser holds one seed's pairs at a
             * time): a judgment of a pair whose seed is not drawn yet, and the keys after it,
             * wait for the drawing (refocus sends them again) */
            pending.unshift.apply(pending, events.slice(e));
            break;
          } else if (/^[1-9]$/.test(key)) {
            var up = key === "1", reason = null, el = cardOf(queue, i);
            if (!up) {
              if (key === "2") {
                var sel = el && el.querySelector("select.vet-reason");
                reason = (sel && sel.value) || "other";
              } else {
                reason = REASONS[parseInt(key, 10) - 3];
              }
            }
            /* dcc.Input (Dash 4) puts the class on a wrapper: .vet-note is a div around the input */
            var noteEl = el && el.querySelector(".vet-note input, input.vet-note");
            outbox.push({
              t: ev.t, dataset: queue.dataset, run: queue.run, preset: queue.preset,
              seed: el.getAttribute("data-seed"), item_id: el.getAttribute("data-item"),
              position: parseInt(el.getAttribute("data-position"), 10),
              verdict: up ? 1 : -1, reason: reason, note: noteEl ? noteEl.value : "",
              at: new Date().toISOString()  /* orders this user's re-judgments whatever order requests land in */
            });
            judged = true;
            mark(el, up ? 1 : -1, reason);
            next = Math.min(n - 1, i + 1);
          }
        }
        if (refused) { refuseNote(); }
        cursorOf.index = next;
        focusPair(next);
        var g = groupOf(queue.starts, next);
        return [next, g === group ? nu : g, judged ? outbox.slice() : nu];
      },
      /* vetting-acked -> the outbox without the stored judgments */
      drop_acked: function (acked) {
        if (!acked || !acked.length) { return window.dash_clientside.no_update; }
        var done = new Set(acked);
        outbox = outbox.filter(function (o) { return !done.has(o.t); });
        return outbox.slice();
      },
      /* after a seed's pairs are drawn: focus the cursor's pair */
      refocus: function (_children, cursor) {
        var drawn = document.querySelectorAll(".vet-pair[data-reason]");
        for (var i = 0; i < drawn.length; i++) { showReason(drawn[i]); }
        focusPair(cursor || 0);
        if (pending.length && window.dash_clientside.set_props) {  /* judgments waiting for these cards */
          counter += 1;
          window.dash_clientside.set_props("vetting-key", {data: counter});
        }
        return window.dash_clientside.no_update;
      }
    }
  });
})();
