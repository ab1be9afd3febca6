// Postcode → address fill of the intake form (issue 12 §4): when the postal code field holds 7
// digits (full-width and any hyphen accepted, as the server does), asks the console's
// /postcodes/<code> (Japan Post's KEN_ALL, imported with `hpki postcodes import`) and fills an
// empty address field; with several towns for one code it offers them as suggestions. No inline
// script (CSP). Never overwrites what was typed.
(function () {
  "use strict";
  function digits(s) {
    return s.replace(/[０-９]/g, function (c) { return String.fromCharCode(c.charCodeAt(0) - 0xfee0); }).replace(/[^0-9]/g, "");
  }
  function start() {
    var form = document.querySelector("form[data-postcode-url]");
    if (!form) return;
    var code = form.querySelector("#field-postalCode");
    var address = form.querySelector("#field-address");
    if (!code || !address) return;
    var list = document.createElement("datalist");
    list.id = "postcode-addresses";
    form.appendChild(list);
    address.setAttribute("list", list.id);
    var last = "";
    function lookup() {
      var d = digits(code.value);
      if (d.length !== 7 || d === last) return;
      last = d;
      fetch(form.getAttribute("data-postcode-url") + d, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : { addresses: [] }; })
        .then(function (j) {
          var xs = (j.addresses || []).map(function (a) { return a.address; });
          list.textContent = "";
          xs.forEach(function (x) { var o = document.createElement("option"); o.value = x; list.appendChild(o); });
          if (!xs.length || address.value.trim() !== "") return;
          address.value = xs.length === 1 ? xs[0] : commonPrefix(xs);
          address.dispatchEvent(new Event("input", { bubbles: true }));
        })
        .catch(function () {});
    }
    function commonPrefix(xs) {
      var p = xs[0];
      xs.forEach(function (x) { while (x.indexOf(p) !== 0) p = p.slice(0, -1); });
      return p;
    }
    code.addEventListener("change", lookup);
    code.addEventListener("input", lookup);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
