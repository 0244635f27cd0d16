// tokenward console: progressive enhancement only; every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // A revealed value hides itself after data-autohide seconds: the page is
  // replaced by the plain secret page (no value in it).
  var box = document.querySelector("[data-autohide]");
  if (box) {
    var hide = document.getElementById("hide-value");
    var secs = parseInt(box.getAttribute("data-autohide"), 10) || 60;
    setTimeout(function () {
      var v = document.getElementById("secret-value");
      if (v) { v.textContent = ""; }
      box.classList.add("hidden");
      if (hide) { window.location.replace(hide.href); }
    }, secs * 1000);
  }
  // Filters with a select submit when it changes.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
    sel.addEventListener("change", function () { sel.form.submit(); });
  });
});
