/* ocrbench leaderboard page: sort a table by a column, filter the leaderboard rows, and link hover between a
   chart's point and its table row. Written for ocrbench (no library, nothing fetched). */
(function () {
  "use strict";

  // A cell's sort key: its data-sort value (the raw number) when it has one, else its text; numbers compare as
  // numbers ("=1" is rank 1, "0.800 ± 0.030" is 0.8, "±0.0198" is 0.0198).
  function key(cell) {
    var raw = cell.getAttribute("data-sort");
    var text = raw !== null ? raw : cell.textContent.trim();
    return { text: text, num: parseFloat(text.replace(/^[=±]/, "")) };
  }

  function compare(a, b, numeric) {
    if (numeric) return a.num - b.num;
    return a.text.localeCompare(b.text);
  }

  function sortBy(table, column, th) {
    var tbody = table.tBodies[0];
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(tbody.rows);
    var keys = new Map(rows.map(function (r) { return [r, key(r.cells[column])]; }));
    var numeric = rows.every(function (r) { var k = keys.get(r); return k.text === "" || !isNaN(k.num); });
    rows.sort(function (a, b) {
      var ka = keys.get(a), kb = keys.get(b);
      var ea = ka.text === "", eb = kb.text === "";
      if (ea || eb) return ea - eb;  // blanks last, either way
      var c = compare(ka, kb, numeric);
      return ascending ? c : -c;
    });
    rows.forEach(function (r) { tbody.appendChild(r); });
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    if (!table.tHead) return;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
      if (th.classList.contains("nosort")) return;
      th.tabIndex = 0;
      th.title = "sort by this column (again: the other way)";
      th.addEventListener("click", function () { sortBy(table, column, th); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(table, column, th); }
      });
    });
  });

  // Filters: a leaderboard row (tr[data-family]) shows when it matches every chosen value and the search text.
  var selects = document.querySelectorAll("select[data-filter]");
  var search = document.getElementById("search");
  var shown = document.getElementById("shown");
  var boardRows = document.querySelectorAll("tr[data-family]");

  function points(rowId) {
    return document.querySelectorAll('[data-row="' + rowId + '"]');
  }

  function applyFilters() {
    var want = {};
    selects.forEach(function (s) { if (s.value) want[s.getAttribute("data-filter")] = s.value; });
    var text = search ? search.value.trim().toLowerCase() : "";
    var visible = 0;
    boardRows.forEach(function (tr) {
      var show = Object.keys(want).every(function (k) { return tr.getAttribute("data-" + k) === want[k]; })
        && (!text || tr.textContent.toLowerCase().indexOf(text) >= 0);
      tr.hidden = !show;
      points(tr.id).forEach(function (p) { p.classList.toggle("off", !show); });
      if (show) visible += 1;
    });
    if (shown) shown.textContent = visible + " of " + boardRows.length + " rows";
  }

  selects.forEach(function (s) { s.addEventListener("change", applyFilters); });
  if (search) search.addEventListener("input", applyFilters);
  applyFilters();

  // Hover: a point lights up its row, a row lights up its points.
  function light(rowId, on) {
    var tr = document.getElementById(rowId);
    if (tr) tr.classList.toggle("lit", on);
    points(rowId).forEach(function (p) { p.classList.toggle("lit", on); });
  }

  document.querySelectorAll("[data-row]").forEach(function (p) {
    var id = p.getAttribute("data-row");
    p.addEventListener("mouseenter", function () { light(id, true); });
    p.addEventListener("mouseleave", function () { light(id, false); });
  });
  boardRows.forEach(function (tr) {
    tr.addEventListener("mouseenter", function () { light(tr.id, true); });
    tr.addEventListener("mouseleave", function () { light(tr.id, false); });
  });
})();
