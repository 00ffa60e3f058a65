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
});
