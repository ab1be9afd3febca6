/*
 * Registration desk — progressive enhancement (issue 12 §7). Same-origin file (CSP script-src
 * 'self'); never builds markup from strings, it only moves server-rendered nodes.
 *
 * 1. Forms marked data-desk-form inside a page region marked data-desk-page (the application
 *    page) post with fetch; the server answers as it does without JavaScript (303 to the page at
 *    the section's anchor, or 400 with the form and its errors), and the server-rendered region
 *    of that answer replaces the region of this page: no full page load, the operator stays at
 *    the section that was worked on. Anything else (another page, a network error) falls back to
 *    a normal navigation.
 * 2. Forms marked data-confirm="…" (forward, ship, revoke) ask for confirmation first and then
 *    send confirmed=1; without JavaScript the server shows its own confirmation page instead.
 * 3. Inputs marked data-submit-on-enter (a USB QR scanner "types" the code and presses Enter)
 *    submit their form on Enter, as single-field forms do anyway.
 */
(function () {
  "use strict";

  function sectionOf(form) {
    var s = form.closest("[data-section]");
    return s ? s.id : null;
  }

  function bodyOf(form, submitter) {
    var data = new FormData(form);
    if (submitter && submitter.name) data.append(submitter.name, submitter.value);
    if (form.enctype === "multipart/form-data") return data;
    var params = new URLSearchParams();
    data.forEach(function (v, k) {
      if (typeof v === "string") params.append(k, v);
    });
    return params;
  }

  function replaceRegion(html, sectionId) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var fresh = doc.querySelector("[data-desk-page]");
    var current = document.querySelector("[data-desk-page]");
    if (!fresh || !current || fresh.id !== current.id) return false;
    // Flash messages of the answer (children of main before the region).
    var main = document.getElementById("main");
    Array.prototype.slice.call(main.querySelectorAll(":scope > .notice")).forEach(function (n) { n.remove(); });
    Array.prototype.slice.call(doc.querySelectorAll("#main > .notice")).forEach(function (n) {
      main.insertBefore(document.importNode(n, true), current);
    });
    var node = document.importNode(fresh, true);
    current.replaceWith(node);
    var title = doc.querySelector("title");
    if (title) document.title = title.textContent;
    // The section worked on; when it is gone (no action left after an approval), the page's start.
    var section = sectionId && document.getElementById(sectionId);
    var target = section || node;
    var invalid = node.querySelector(".notice--error[role=alert]");
    var heading = invalid || target.querySelector("h1, h2[tabindex]") || target;
    if (section) section.classList.add("desk-section--current");
    target.scrollIntoView({ block: "start" });
    if (heading.focus) {
      if (!heading.hasAttribute("tabindex")) heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
    history.replaceState(null, "", section ? "#" + sectionId : location.pathname);
    return true;
  }

  function submitInPlace(form, submitter) {
    var sectionId = sectionOf(form);
    var region = document.querySelector("[data-desk-page]");
    if (region) region.setAttribute("aria-busy", "true");
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    fetch(form.action, {
      method: "POST",
      body: bodyOf(form, submitter),
      credentials: "same-origin",
      headers: { Accept: "text/html" },
      redirect: "follow",
    }).then(function (res) {
      return res.text().then(function (html) {
        var sameOrigin = new URL(res.url, location.href).origin === location.origin;
        if (!sameOrigin || !replaceRegion(html, sectionId)) location.assign(res.url || location.href);
      });
    }).catch(function () {
      // Network error: let the browser post the form itself.
      form.removeAttribute("data-desk-form");
      HTMLFormElement.prototype.submit.call(form);
    }).finally(function () {
      var r = document.querySelector("[data-desk-page]");
      if (r) r.removeAttribute("aria-busy");
      buttons.forEach(function (b) { b.disabled = false; });
    });
  }

  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!(form instanceof HTMLFormElement)) return;
    var message = form.getAttribute("data-confirm");
    if (message !== null && !form.querySelector('input[name="confirmed"]')) {
      if (!window.confirm(message)) {
        e.preventDefault();
        return;
      }
      var c = document.createElement("input");
      c.type = "hidden";
      c.name = "confirmed";
      c.value = "1";
      form.appendChild(c);
    }
    if (form.hasAttribute("data-desk-form") && form.closest("[data-desk-page]") && window.fetch && window.DOMParser) {
      e.preventDefault();
      submitInPlace(form, e.submitter);
    }
  });

  document.addEventListener("keydown", function (e) {
    var input = e.target;
    if (e.key !== "Enter" || !(input instanceof HTMLInputElement) || !input.hasAttribute("data-submit-on-enter")) return;
    e.preventDefault();
    if (input.value.trim() && input.form) input.form.requestSubmit();
  });
})();
