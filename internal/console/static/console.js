// longhook console: copy buttons, confirmations and the live deliveries
// table. The project switcher has no script: it switches on its button,
// not on change, which arrow keys fire at every step (WCAG 3.2.2). No inline script anywhere (the CSP forbids
// it); rows are built with textContent only, never innerHTML.
"use strict";

document.addEventListener("click", function (e) {
  var b = e.target.closest("[data-copy]");
  if (!b) return;
  var el = document.getElementById(b.getAttribute("data-copy"));
  if (!el) return;
  var text = el.value !== undefined ? el.value : el.textContent;
  var done = function () { b.textContent = "Copied"; setTimeout(function () { b.textContent = "Copy"; }, 1500); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, function () { el.select && el.select(); });
  } else if (el.select) {
    el.select(); document.execCommand("copy"); done();
  }
});

document.addEventListener("submit", function (e) {
  var b = e.submitter || e.target.querySelector("[data-confirm]");
  var msg = b && b.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) e.preventDefault();
});

function cell(tr, cls, child) {
  var td = document.createElement("td");
  if (cls) td.className = cls;
  if (typeof child === "string") td.textContent = child; else if (child) td.appendChild(child);
  tr.appendChild(td);
  return td;
}

function deliveryRow(d) {
  var tr = document.createElement("tr");
  tr.setAttribute("data-id", d.id);
  tr.className = "fresh";
  var a = document.createElement("a");
  a.className = "mono small"; a.href = "/console/deliveries/" + encodeURIComponent(d.id); a.textContent = d.id;
  cell(tr, "", a);
  cell(tr, "mono small", d.event_type);
  var badge = document.createElement("span");
  badge.className = "badge " + d["class"]; badge.textContent = d.status;
  cell(tr, "", badge);
  cell(tr, "num", String(d.attempts)).setAttribute("data-label", "attempts");
  var last = document.createElement("span");
  if (d.error) { last.className = "bad-text"; last.textContent = d.error; }
  else if (d.code) { last.textContent = "HTTP " + d.code; }
  else { last.className = "muted"; last.textContent = "—"; }
  cell(tr, "small", last);
  cell(tr, "small nowrap utc", d.created);
  return tr;
}

(function live() {
  var table = document.querySelector("table[data-stream]");
  if (!table || !window.EventSource) return;
  var url = table.getAttribute("data-stream") + "?after=" + encodeURIComponent(table.getAttribute("data-after") || "") +
    "&shown=" + encodeURIComponent(table.getAttribute("data-shown") || "");
  var es = new EventSource(url);
  var tbody = table.tBodies[0];
  var badge = document.getElementById("live");
  es.onopen = function () { if (badge) badge.hidden = false; };
  es.onerror = function () { if (badge) badge.hidden = true; };
  // The server ends the stream for good when the session, its key or the
  // webhook is gone: do not reconnect.
  es.addEventListener("end", function () { es.close(); if (badge) badge.hidden = true; });
  es.addEventListener("delivery", function (m) {
    var d = JSON.parse(m.data);
    var row = deliveryRow(d);
    var old = tbody.querySelector('tr[data-id="' + CSS.escape(d.id) + '"]');
    var none = tbody.querySelector("tr.none");
    if (none) none.remove();
    if (old) tbody.replaceChild(row, old); else tbody.insertBefore(row, tbody.firstChild);
  });
})();
