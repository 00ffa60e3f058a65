// Progressive enhancement only: every page works without this file.
document.addEventListener("DOMContentLoaded", function () {
  // "Tick every customer on this page" is shown (it is hidden without JS)
  // and ticks the rows' checkboxes.
  document.querySelectorAll("input[data-select-all]").forEach(function (all) {
    var name = all.getAttribute("data-select-all");
    var boxes = document.querySelectorAll('input[type=checkbox][name="' + name + '"]');
    all.hidden = false;
    all.addEventListener("change", function () {
      boxes.forEach(function (b) { b.checked = all.checked; });
    });
  });

  // Inline assign: the row's Save assigns in place. The form is posted as
  // without JS; the page it leads to (the same list, after the command)
  // gives the row's new cell, so the list is not reloaded. A refusal, or
  // anything unexpected, is shown as the whole answer page, as without JS.
  document.querySelectorAll("form.assign-form").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var row = document.getElementById(form.getAttribute("data-row"));
      fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" })
        .then(function (res) { return res.text().then(function (html) { return { res: res, html: html }; }); })
        .then(function (a) {
          var doc = new DOMParser().parseFromString(a.html, "text/html");
          var fresh = row && doc.getElementById(row.id);
          if (!a.res.ok || !a.res.redirected || !fresh) {
            document.open(); document.write(a.html); document.close();
            return;
          }
          row.querySelector("td.assignees").replaceWith(fresh.querySelector("td.assignees"));
          var notice = doc.getElementById("notice");
          var old = document.getElementById("notice");
          if (old) { old.remove(); }
          if (notice) { document.getElementById("main").prepend(notice); }
        })
        .catch(function () { form.submit(); });
    });
  });

  // Team pickers: the search answers as one types (the same search as
  // the Find button, which then is not needed). A ticked answer moves to
  // the chosen ones, so the next search does not lose it.
  document.querySelectorAll("fieldset[data-picker]").forEach(function (set) {
    var field = set.getAttribute("data-picker");
    var input = set.querySelector("input.picker-q");
    var offered = set.querySelector(".picker-offered");
    var chosen = set.querySelector(".picker-chosen");
    var find = set.querySelector("button.picker-find");
    var initial = offered.innerHTML;
    var timer = null, asked = 0;
    if (!input || !window.fetch) { return; }
    if (find) { find.hidden = true; }
    set.addEventListener("change", function (e) {
      var box = e.target;
      if (box.name === field && box.checked && offered.contains(box)) {
        chosen.appendChild(box.closest("label"));
      }
    });
    function search() {
      var q = input.value.trim();
      var mine = ++asked;
      if (q === "") { offered.innerHTML = initial; return; }
      fetch("/users/search?q=" + encodeURIComponent(q), { credentials: "same-origin" })
        .then(function (res) { return res.ok ? res.json() : []; })
        .then(function (users) {
          if (mine !== asked) { return; }
          offered.textContent = "";
          var shown = 0;
          users.forEach(function (u) {
            if (chosen.querySelector('input[value="' + u.id + '"]')) { return; }
            var label = document.createElement("label");
            var box = document.createElement("input");
            box.type = "checkbox"; box.name = field; box.value = u.id;
            label.appendChild(box);
            label.appendChild(document.createTextNode(" " + u.name + " "));
            if (u.email) {
              var small = document.createElement("small");
              small.className = "muted"; small.textContent = u.email;
              label.appendChild(small);
            }
            offered.appendChild(label);
            shown++;
          });
          if (shown === 0) {
            var p = document.createElement("p");
            p.className = "muted"; p.textContent = "No active user matches \u201c" + q + "\u201d.";
            offered.appendChild(p);
          }
        });
    }
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(search, 200);
    });
    input.addEventListener("keydown", function (e) {
      if (e.key === "Enter") { e.preventDefault(); clearTimeout(timer); search(); }
    });
  });
});
