// Strongroom portal: the few things a server-rendered page cannot do by itself. Reveal a
// secret value for a limited time (hide now, keep visible, an announced countdown), copy a
// value without showing it, copy plain text, and warn before the session times out. Values
// are fetched with POST from this origin and kept only in the page, never in storage.
"use strict";
(function () {
  var live = document.getElementById("live");
  function announce(msg) {
    if (!live) return;
    live.textContent = "";
    window.setTimeout(function () { live.textContent = msg; }, 50);
  }
  function post(form) {
    return fetch(form.action, {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Accept": "application/json" }, body: new URLSearchParams(new FormData(form))
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) throw new Error(j.error || ("The server answered " + r.status + "."));
        return j;
      });
    });
  }
  function showError(msg) {
    var box = document.getElementById("reveal-error");
    if (!box) {
      box = document.createElement("p");
      box.id = "reveal-error";
      box.className = "field-error";
      box.setAttribute("role", "alert");
      var sec = document.querySelector(".reveal") || document.querySelector("main");
      sec.appendChild(box);
    }
    box.textContent = msg;
  }

  // Show secret value.
  var revealForm = document.querySelector("form[data-reveal]");
  var box = document.getElementById("secret-value-box");
  var countdown = document.getElementById("reveal-countdown");
  var hideBtn = document.getElementById("hide-value");
  var keepBtn = document.getElementById("keep-visible");
  var showBtn = document.getElementById("show-value");
  var timer = null, left = 0;
  function mask() {
    box.textContent = "";
    var p = document.createElement("p");
    p.id = "secret-mask"; p.className = "mask"; p.setAttribute("aria-label", "Secret value hidden");
    p.textContent = "\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u2022";
    box.appendChild(p);
  }
  function hide(reason) {
    if (timer) { window.clearInterval(timer); timer = null; }
    mask();
    countdown.hidden = true; hideBtn.hidden = true; keepBtn.hidden = true;
    keepBtn.setAttribute("aria-pressed", "false");
    showBtn.hidden = false;
    announce(reason);
    showBtn.focus();
  }
  function tick() {
    left--;
    if (left <= 0) { hide("The secret value is hidden again."); return; }
    countdown.textContent = "The value hides in " + left + " second" + (left === 1 ? "" : "s") + ".";
    if (left === 10) announce("The secret value hides in 10 seconds. Choose Keep visible to keep it.");
  }
  if (revealForm && box) {
    revealForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      post(revealForm).then(function (j) {
        box.textContent = "";
        var pre = document.createElement("pre");
        pre.id = "secret-value"; pre.className = "secret"; pre.textContent = j.value;
        box.appendChild(pre);
        left = j.seconds || 30;
        countdown.textContent = "The value hides in " + left + " seconds.";
        countdown.hidden = false; hideBtn.hidden = false; keepBtn.hidden = false; showBtn.hidden = true;
        announce("Secret value shown. It hides in " + left + " seconds.");
        timer = window.setInterval(tick, 1000);
        hideBtn.focus();
      }).catch(function (e) { showError(e.message); });
    });
    hideBtn.addEventListener("click", function () { hide("The secret value is hidden."); });
    keepBtn.addEventListener("click", function () {
      if (timer) { window.clearInterval(timer); timer = null; }
      keepBtn.setAttribute("aria-pressed", "true");
      countdown.textContent = "The value stays visible until you hide it or leave the page.";
      announce("The secret value stays visible until you hide it.");
    });
  }

  // Copy secret value without showing it.
  var copyForm = document.querySelector("form[data-copy]");
  if (copyForm) {
    copyForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      post(copyForm).then(function (j) {
        return navigator.clipboard.writeText(j.value);
      }).then(function () {
        announce("Copied the secret value to the clipboard.");
        copyForm.querySelector("button").textContent = "Copied";
        window.setTimeout(function () { copyForm.querySelector("button").textContent = "Copy secret value"; }, 3000);
      }).catch(function (e) { showError("The value could not be copied: " + e.message); });
    });
  }

  // Copy plain text (vault URI, identifiers).
  document.querySelectorAll("[data-copy-text]").forEach(function (b) {
    b.addEventListener("click", function () {
      navigator.clipboard.writeText(b.getAttribute("data-copy-text")).then(function () {
        announce("Copied to the clipboard.");
      }, function () { announce("Copying failed; select the text and copy it."); });
    });
  });

  // The value field: masked while typing, with a toggle.
  var value = document.getElementById("value");
  var toggle = document.getElementById("toggle-mask");
  if (value && toggle) {
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      var on = value.classList.toggle("unmasked");
      toggle.setAttribute("aria-pressed", on ? "true" : "false");
      toggle.textContent = on ? "Mask value" : "Show value while typing";
    });
  }

  // Session idle warning (WCAG 2.2.1): a minute before the idle timeout, offer to stay.
  var body = document.body;
  if (body.getAttribute("data-signed-in") === "1") {
    var idle = parseInt(body.getAttribute("data-idle-seconds"), 10) || 900;
    var warn = document.getElementById("session-warning");
    var warnText = document.getElementById("session-warning-text");
    var stay = document.getElementById("stay-signed-in");
    var lead = Math.min(60, Math.floor(idle / 2));
    var warnTimer, endTimer;
    var arm = function () {
      window.clearTimeout(warnTimer); window.clearTimeout(endTimer);
      warnTimer = window.setTimeout(function () {
        warn.hidden = false;
        warn.setAttribute("role", "alert");
        warnText.textContent = "Your session ends in " + lead + " seconds because of inactivity.";
      }, (idle - lead) * 1000);
      endTimer = window.setTimeout(function () {
        warnText.textContent = "Your session has ended because of inactivity. Sign in again to continue.";
        stay.hidden = true;
      }, idle * 1000);
    };
    arm();
    stay.addEventListener("click", function () {
      fetch("/portal/session/keepalive", { method: "POST", credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) {
          if (!r.ok) throw new Error();
          warn.hidden = true; warn.removeAttribute("role");
          announce("You are still signed in.");
          arm();
        }).catch(function () { warnText.textContent = "Your session has ended. Sign in again to continue."; });
    });
  }
})();
