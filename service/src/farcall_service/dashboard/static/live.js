// Live pages: when the server says the viewer's tasks changed (server-sent events,
// /dashboard/events), fetch this page again and swap its <main> in place, unless
// the viewer is typing in one of its fields. No framework, no build step.
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || !main.dataset.live || !window.EventSource) { return; }
  var prefix = document.querySelector("link[rel=stylesheet]").getAttribute("href")
    .replace(/\/static\/.*$/, "");
  var status = document.createElement("p");
  status.id = "live-status";
  status.className = "note";
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");
  main.after(status);
  var busy = false;
  var again = false;

  function typing() {
    var active = document.activeElement;
    return active && main.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
  }

  // A keyboard user keeps their place: the link or field that had the focus gets
  // it back after the swap (found again by its id or its href).
  function focusKey() {
    var active = document.activeElement;
    if (!active || !main.contains(active)) { return null; }
    if (active.id) { return "#" + CSS.escape(active.id); }
    var href = active.getAttribute("href");
    return href ? "[href=\"" + CSS.escape(href) + "\"]" : null;
  }

  function restoreFocus(selector) {
    var target = selector && main.querySelector(selector);
    if (target) { target.focus(); }
  }

  function refresh() {
    if (busy || typing()) { again = true; return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("main");
        if (fresh) {
          var focused = focusKey();
          main.innerHTML = fresh.innerHTML;
          restoreFocus(focused);
          main.dataset.updates = String(Number(main.dataset.updates || "0") + 1);
          status.textContent = "Updated " + new Date().toLocaleTimeString();
        }
      })
      .finally(function () {
        busy = false;
        if (again) { again = false; setTimeout(refresh, 1000); }
      });
  }

  var source = new EventSource(prefix + "/events");
  source.addEventListener("changed", refresh);
  source.addEventListener("open", function () { main.dataset.listening = "yes"; });
})();
