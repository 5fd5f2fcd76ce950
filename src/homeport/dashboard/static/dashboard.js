// The dashboard's only script (the CSP allows no inline ones): asks before destructive forms
// are sent, and refreshes tables that say where their rows come from.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

function refresh(body) {
  const url = body.getAttribute("data-refresh") + window.location.search;
  fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
    .then((response) => {
      if (response.redirected || !response.ok) {
        return null; // logged out or failing: keep what is shown
      }
      return response.text();
    })
    .then((html) => {
      if (html !== null) {
        body.innerHTML = html;
      }
    })
    .catch(() => {});
}

document.querySelectorAll("tbody[data-refresh]").forEach((body) => {
  const every = Number(body.getAttribute("data-interval")) || 5000;
  window.setInterval(() => refresh(body), every);
});
