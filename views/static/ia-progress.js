/*
 * IA console — live progress of an issuance job (views/ia/job.hbs). Polls the job as JSON
 * (GET /ia/jobs/:id, Accept: application/json) once a second, moves the progress bar, adds a row
 * per card issued or request failed, and reloads the page once the job has finished so the
 * server-rendered summary replaces it. Without JavaScript the page works as is: reload it.
 * Same-origin file (CSP script-src 'self'); builds rows with textContent only.
 */
(function () {
  "use strict";
  var root = document.getElementById("ia-job");
  if (!root || root.getAttribute("data-state") !== "running") return;
  var url = root.getAttribute("data-job-url");
  var template = root.getAttribute("data-progress-text") || "{done} / {total}";
  var bar = document.getElementById("ia-job-progress");
  var status = document.getElementById("ia-job-status");
  var issuedBody = document.getElementById("ia-job-issued");
  var failedBody = document.getElementById("ia-job-failed");
  var failedSection = document.getElementById("ia-job-failed-section");
  var ja = document.documentElement.lang === "ja";

  function seen(body, id) {
    return body.querySelector('tr[data-request="' + String(id) + '"]') !== null;
  }
  function cell(tr, text, code) {
    var td = document.createElement("td");
    if (code) {
      var c = document.createElement("code");
      c.textContent = text;
      td.appendChild(c);
    } else {
      td.textContent = text;
    }
    tr.appendChild(td);
    return td;
  }
  function addIssued(card) {
    if (seen(issuedBody, card.requestId)) return;
    var tr = document.createElement("tr");
    tr.setAttribute("data-request", String(card.requestId));
    cell(tr, card.applicationNo);
    cell(tr, card.applicantName || "");
    cell(tr, card.cardLabel, true);
    var td = cell(tr, "");
    (card.certificates || []).forEach(function (c) {
      var div = document.createElement("div");
      div.textContent = c.caName + " ";
      var code = document.createElement("code");
      code.textContent = c.serialHex;
      div.appendChild(code);
      td.appendChild(div);
    });
    issuedBody.appendChild(tr);
  }
  function addFailed(f) {
    if (seen(failedBody, f.requestId)) return;
    var tr = document.createElement("tr");
    tr.setAttribute("data-request", String(f.requestId));
    cell(tr, f.applicationNo);
    cell(tr, f.applicantName || "");
    cell(tr, ja ? f.errorJa + "（" + f.error + "）" : f.error);
    failedBody.appendChild(tr);
    failedSection.hidden = false;
  }
  function show(job) {
    bar.max = Math.max(job.total, 1);
    bar.value = job.total ? job.done : 0;
    bar.textContent = job.percent + "%";
    var strong = document.createElement("strong");
    strong.textContent = template.replace("{done}", String(job.done)).replace("{total}", String(job.total));
    status.replaceChildren(strong);
    job.issued.forEach(addIssued);
    job.failed.forEach(addFailed);
  }
  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (body) {
        show(body.job);
        if (body.job.state === "finished") window.location.reload();
        else window.setTimeout(poll, 1000);
      })
      .catch(function () {
        window.setTimeout(poll, 5000);
      });
  }
  window.setTimeout(poll, 1000);
})();
