"""The report page's inline style and script (`jobs.report_html` writes them into the page:
one file, nothing external). The script filters cards by tag, status and text, and keeps the
filter in the URL's `#` part (`#tags=red,circle&q=left&status=ok`)."""

CSS = """
:root{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2330;
background:#f5f6f8}
body{margin:0;padding:16px 20px}
h1{font-size:20px;margin:0 0 4px;overflow-wrap:anywhere}h2{font-size:16px;margin:12px 0 6px}
.sub{color:#5b6475;font-size:13px;margin-bottom:10px;overflow-wrap:anywhere}
.summary{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:8px 14px;
margin-bottom:14px}
.charts{display:flex;flex-wrap:wrap;gap:12px 32px}
.chart{flex:1 1 280px;max-width:560px;min-width:0;margin:0;font-size:12px}
.chart figcaption{font-size:13px;font-weight:600;margin-bottom:4px}
.chart .note{font-weight:400;color:#5b6475}
.bar{display:grid;grid-template-columns:1fr auto;gap:1px 8px;align-items:center;margin:5px 0}
.bar .run{grid-column:1/-1;overflow-wrap:anywhere}
.track{display:flex;height:12px;background:#eef1f6;border-radius:3px;overflow:hidden}
.seg{display:block;height:100%}
.num{color:#5b6475;font-variant-numeric:tabular-nums}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;margin-top:6px;color:#5b6475}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:-1px}
.scroll{overflow-x:auto;max-width:100%}
table.runs{border-collapse:collapse;font-size:13px;margin-top:6px}
table.runs td,table.runs th{border-bottom:1px solid #e6e9ef;padding:3px 10px;text-align:right;
white-space:nowrap}
table.runs td:first-child,table.runs th:first-child{text-align:left}
.reasons{font-size:12px;color:#7a2b2b;overflow-wrap:anywhere;padding-left:18px}
.controls{position:sticky;top:0;background:#f5f6f8;padding:8px 0;z-index:2;
border-bottom:1px solid #dde1e8;margin-bottom:10px}
.controls input[type=search]{width:min(320px,100%);box-sizing:border-box;padding:6px 8px;
font-size:14px}
.controls select{padding:5px;font-size:14px;margin-left:6px}
#count{margin-left:10px;font-size:13px;color:#5b6475}
.chips{margin-top:8px;display:flex;flex-wrap:wrap;gap:5px}
.chip{border:1px solid #b8c0cc;background:#fff;border-radius:14px;padding:2px 10px;
font-size:12px;cursor:pointer}
.chip[aria-pressed=true]{background:#3b6fd6;color:#fff;border-color:#3b6fd6}
.chip span{opacity:.7;margin-left:3px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:12px}
.card{background:#fff;border:1px solid #dde1e8;border-radius:8px;overflow:hidden;
display:flex;flex-direction:column;content-visibility:auto;contain-intrinsic-size:auto 300px}
.card[hidden]{display:none!important}
.dups{margin:0 10px 10px;font-size:12px;color:#5b6475}
.dups ul{margin:4px 0 0;padding-left:16px}
.dupof{margin:0 10px 10px;font-size:12px;color:#5b6475;overflow-wrap:anywhere}
.card img{width:100%;aspect-ratio:16/10;object-fit:contain;background:#111;display:block}
.nothumb{aspect-ratio:16/10;background:#30343c;color:#c9ced8;display:flex;
align-items:center;justify-content:center;font-size:12px}
.meta{padding:6px 10px 0;font-size:12px;color:#5b6475;display:flex;justify-content:space-between;
gap:6px}
.meta a{color:#2b58b5;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.caption{margin:6px 10px;font-size:14px;line-height:1.35}
.caption.error{color:#a12d2d;font-size:12px;word-break:break-word}
.tags{list-style:none;margin:0 10px 10px;padding:0;display:flex;flex-wrap:wrap;gap:4px}
.tags li{background:#eef1f6;border-radius:10px;padding:1px 8px;font-size:12px}
.tags .score{color:#5b6475;font-variant-numeric:tabular-nums}
"""

SCRIPT = r"""
(function () {
  "use strict";
  function decoded(v) {  // a hand-typed `#q=%` is not valid percent-encoding: keep it as typed
    try { return decodeURIComponent(v); } catch (e) { return v; }
  }
  var cards = Array.prototype.slice.call(document.querySelectorAll(".card"));
  var items = cards.map(function (el) {
    var cap = el.querySelector(".caption");
    var src = el.querySelector(".src");
    var tags = JSON.parse(el.getAttribute("data-tags") || "[]");  // a list: never split
    return {
      el: el,
      tags: new Set(tags),
      status: el.getAttribute("data-status"),
      text: [cap ? cap.textContent : "", tags.join(" "), src ? src.title : ""]
        .join(" ").toLowerCase()
    };
  });
  var q = document.getElementById("q");
  var statusBox = document.getElementById("status");
  var count = document.getElementById("count");
  var chipsBox = document.getElementById("chips");
  var selected = new Set();
  var tally = new Map();
  items.forEach(function (it) {
    it.tags.forEach(function (t) { tally.set(t, (tally.get(t) || 0) + 1); });
  });
  Array.from(tally.keys()).sort(function (a, b) {
    return tally.get(b) - tally.get(a) || (a < b ? -1 : 1);
  }).forEach(function (tag) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "chip";
    b.setAttribute("data-tag", tag);
    b.setAttribute("aria-pressed", "false");
    b.textContent = tag;
    var n = document.createElement("span");
    n.textContent = tally.get(tag);
    b.appendChild(n);
    b.addEventListener("click", function () {
      if (selected.has(tag)) { selected.delete(tag); } else { selected.add(tag); }
      apply(true);
    });
    chipsBox.appendChild(b);
  });

  function apply(updateHash) {
    var words = [q.value.toLowerCase().replace(/\s+/g, " ").trim()].filter(Boolean);
    var want = statusBox.value;
    var shown = 0;
    for (var i = 0; i < items.length; i++) {
      var it = items[i];
      var ok = true;
      selected.forEach(function (t) { if (ok && !it.tags.has(t)) { ok = false; } });
      if (ok && want) { ok = want === "ok" ? it.status === "ok" : it.status !== "ok"; }
      for (var w = 0; ok && w < words.length; w++) { ok = it.text.indexOf(words[w]) >= 0; }
      if (it.el.hidden === ok) { it.el.hidden = !ok; }
      if (ok) { shown++; }
    }
    count.textContent = shown + " of " + items.length + " clips shown";
    Array.prototype.forEach.call(chipsBox.children, function (b) {
      b.setAttribute("aria-pressed", selected.has(b.getAttribute("data-tag")) ? "true" : "false");
    });
    if (updateHash) {
      var parts = [];
      if (selected.size) {
        parts.push("tags=" + Array.from(selected).map(encodeURIComponent).join(","));
      }
      if (q.value) { parts.push("q=" + encodeURIComponent(q.value)); }
      if (want) { parts.push("status=" + encodeURIComponent(want)); }
      history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname);
    }
  }

  function fromHash() {
    selected.clear();
    var h = location.hash.replace(/^#/, "");
    h.split("&").forEach(function (kv) {
      var i = kv.indexOf("=");
      if (i < 0) { return; }
      var k = kv.slice(0, i), v = kv.slice(i + 1);
      if (k === "tags") {
        v.split(",").filter(Boolean).forEach(function (t) { selected.add(decoded(t)); });
      } else if (k === "q") { q.value = decoded(v); }
      else if (k === "status") { statusBox.value = decoded(v); }
    });
    apply(false);
  }

  var timer = null;
  q.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { apply(true); }, items.length > 1000 ? 150 : 0);
  });
  statusBox.addEventListener("change", function () { apply(true); });
  window.addEventListener("hashchange", fromHash);
  fromHash();
})();
"""
