// The SSO login page's card-agent login (issue 14 §9; src/sso/card-agent-server.ts): asks the local
// agent on 127.0.0.1 whether it runs; on "log in with the card" sends it the challenge text (never a
// PIN: the agent asks for it on its own terminal) and posts the signed answer through the page's
// ordinary form, so success, refusals and the "return to the service" button work as for a pasted
// answer. Where no agent answers, the install/start instructions are shown; the paste path stays.
(function () {
  "use strict";
  var box = document.getElementById("card-agent");
  var form = document.getElementById("card-form");
  var pre = document.getElementById("challenge");
  if (!box || !form || !pre) return;
  var agent = box.getAttribute("data-agent");
  var show = function (id, on) { document.getElementById(id).hidden = !on; };
  var status = document.getElementById("agent-status");
  var timer = new AbortController();
  setTimeout(function () { timer.abort(); }, 3000);
  fetch(agent + "/v1/status", { signal: timer.signal, cache: "no-store" })
    .then(function (r) { return r.ok ? r.json() : Promise.reject(new Error("status " + r.status)); })
    .then(function (j) {
      if (!j || j.agent !== "hpki-card-agent") throw new Error("not a card agent");
      show("agent-checking", false);
      show("agent-ready", true);
    })
    .catch(function () {
      show("agent-checking", false);
      show("agent-missing", true);
    });
  document.getElementById("agent-login").addEventListener("click", function (ev) {
    ev.target.disabled = true;
    status.textContent = box.getAttribute("data-waiting");
    fetch(agent + "/v1/sign", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ challenge: pre.textContent }) })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, j: j }; }); })
      .then(function (a) {
        if (!a.ok) throw new Error(a.j && a.j.message ? a.j.message : "agent error");
        delete a.j.service;
        form.elements.response.value = JSON.stringify(a.j);
        form.submit();
      })
      .catch(function (e) {
        status.textContent = box.getAttribute("data-failed") + " " + e.message;
        ev.target.disabled = false;
      });
  });
})();
