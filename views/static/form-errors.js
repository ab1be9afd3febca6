// Error summary of a refused form (issue 12 §5): focus it on load so a keyboard or screen-reader
// user starts at the list of problems; a link in it focuses its field. No inline script (CSP).
(function () {
  "use strict";
  function start() {
    var summary = document.querySelector("[data-error-summary]");
    if (!summary) return;
    summary.focus();
    summary.addEventListener("click", function (ev) {
      var a = ev.target.closest ? ev.target.closest("a[href^='#field-']") : null;
      if (!a) return;
      var field = document.getElementById(a.getAttribute("href").slice(1));
      if (!field) return;
      ev.preventDefault();
      var details = field.closest ? field.closest("details") : null;
      if (details) details.open = true;
      field.scrollIntoView({ block: "center" });
      if (typeof field.focus === "function") field.focus();
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
