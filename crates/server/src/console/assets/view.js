// Opening an entry's details on the log page (or a record's history) is a read of what the entry
// holds, which Stele records as a `view` entry (channel pii-read). The details are part of the
// page, so only the browser knows when they are opened: this tells the server, once per entry per
// page load. (With JavaScript off, each entry's details link to its own page, which records the
// view as it renders.)
(function () {
  'use strict';

  var reported = {};

  // `toggle` does not bubble, so listen while it is on its way down (capture).
  document.addEventListener('toggle', function (event) {
    var details = event.target;
    if (!details.classList || !details.classList.contains('entry-details') || !details.open) return;
    var row = details.closest('tbody.entry');
    if (!row || row.id.indexOf('entry-') !== 0) return;
    var id = row.id.slice('entry-'.length);
    if (reported[id]) return;
    reported[id] = true;
    window.stele.send('/console/entries/' + encodeURIComponent(id) + '/view', { method: 'POST' })
      .then(function (response) {
        if (!response.ok) reported[id] = false; // the next opening tries again
      })
      .catch(function () { reported[id] = false; });
  }, true);
})();
