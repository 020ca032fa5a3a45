// hookd dashboard: progressive enhancement only. Every page works without this file; with it,
// the first page of the delivery log refreshes its rows every few seconds while visible.
(function () {
  "use strict";
  var rows = document.getElementById("delivery-rows");
  if (!rows || !rows.dataset.live) return;
  var note = document.querySelector(".live-note");
  if (note) note.hidden = false;
  function refresh() {
    if (document.hidden) return;
    var url = new URL(window.location.href);
    url.searchParams.set("rows", "1");
    fetch(url.toString(), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html !== null) rows.innerHTML = html; })
      .catch(function () {});
  }
  window.setInterval(refresh, 3000);
})();
