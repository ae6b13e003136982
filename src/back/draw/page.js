// resnetc's network page: folds stages, opens blocks, shows what is clicked and finds
// layers from the table. Everything it shows comes from the JSON beside it; text from the
// spec is only ever set as text, never as markup.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("resnetc-data").textContent);
  var drawing = document.getElementById("drawing");
  var details = document.getElementById("details");
  var tip = document.getElementById("tip");
  var search = document.getElementById("search");
  var count = document.getElementById("count");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#layer-table tbody tr"));

  // The drawing's tooltips are the page's own: the SVG <title>s would show twice.
  Array.prototype.forEach.call(drawing.querySelectorAll("title"), function (t) {
    t.parentNode.removeChild(t);
  });

  function byAttr(selector, name, value) {
    return Array.prototype.filter.call(drawing.querySelectorAll(selector), function (e) {
      return e.getAttribute(name) === value;
    });
  }
  function group(id) { return byAttr("section.group", "data-group", id)[0]; }
  function block(id) { return byAttr("div.blk", "data-block", id)[0]; }
  function shown(e) { return e.getClientRects().length > 0; }

  // Unfolds the stage and opens the block an item is in (a stage or a block itself
  // stays as the click left it).
  function reveal(item, id) {
    var g = item.group !== id && item.group && group(item.group);
    if (g) g.classList.remove("folded");
    var b = item.block !== id && item.block && block(item.block);
    if (b) b.classList.add("is-open");
  }

  function text(item, field) {
    if (field === "spec") {
      return item.line ? data.spec + ":" + item.line + "  " + (data.lines[item.line] || "").trim() : "";
    }
    return String(item[field]);
  }

  function show(id) {
    var item = data.items[id];
    if (!item) return;
    details.classList.add("filled");
    details.setAttribute("data-id", id);
    Array.prototype.forEach.call(details.querySelectorAll("dd[data-field]"), function (dd) {
      dd.textContent = text(item, dd.getAttribute("data-field"));
    });
  }

  function select(id, scroll) {
    var item = data.items[id];
    if (!item) return;
    reveal(item, id);
    Array.prototype.forEach.call(drawing.querySelectorAll(".sel"), function (e) { e.classList.remove("sel"); });
    var marks = byAttr("[data-id]", "data-id", id);
    marks.forEach(function (e) { e.classList.add("sel"); });
    rows.forEach(function (r) { r.classList.remove("sel"); });
    var first = null;
    item.rows.forEach(function (i) {
      if (rows[i]) { rows[i].classList.add("sel"); first = first || rows[i]; }
    });
    if (first && item.rows.length <= 64) first.scrollIntoView({ block: "nearest" });
    show(id);
    if (scroll) {
      var target = marks.filter(shown)[0];
      if (target) target.scrollIntoView({ block: "center", inline: "nearest" });
    }
  }

  drawing.addEventListener("click", function (e) {
    var el = e.target.closest("[data-id]");
    if (!el) return;
    var id = el.getAttribute("data-id");
    if (el.classList.contains("gbar")) {
      group(id).classList.toggle("folded");
    } else if (el.classList.contains("block-closed")) {
      block(id).classList.add("is-open");
    } else if (el.classList.contains("block-open")) {
      block(id).classList.remove("is-open");
    }
    select(id, false);
  });

  drawing.addEventListener("mousemove", function (e) {
    var el = e.target.closest("[data-id]");
    var item = el && data.items[el.getAttribute("data-id")];
    if (!item) { tip.hidden = true; return; }
    tip.textContent = item.name + "  " + item.op + "\noutput " + item.output +
      "  params " + item.params + "  MACs " + item.macs;
    tip.hidden = false;
    var x = Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 4);
    tip.style.left = Math.max(0, x) + "px";
    tip.style.top = (e.clientY + 16) + "px";
  });
  drawing.addEventListener("mouseleave", function () { tip.hidden = true; });

  document.querySelector("#layer-table tbody").addEventListener("click", function (e) {
    var tr = e.target.closest("tr");
    if (tr) select(tr.getAttribute("data-id"), true);
  });

  function filter() {
    var q = search.value.trim().toLowerCase();
    var n = 0;
    rows.forEach(function (r) {
      var hit = !q || r.cells[0].textContent.toLowerCase().indexOf(q) >= 0 ||
        r.cells[1].textContent.toLowerCase().indexOf(q) >= 0;
      r.hidden = !hit;
      if (hit) n += 1;
    });
    count.textContent = q ? n + " of " + rows.length + " layers" : rows.length + " layers";
  }
  search.addEventListener("input", filter);
  filter();

  function every(open) {
    Array.prototype.forEach.call(drawing.querySelectorAll("div.blk"), function (b) {
      b.classList.toggle("is-open", open);
    });
    Array.prototype.forEach.call(drawing.querySelectorAll("section.group"), function (g) {
      g.classList.remove("folded");
    });
  }
  document.getElementById("open-all").addEventListener("click", function () { every(true); });
  document.getElementById("close-all").addEventListener("click", function () { every(false); });
})();
