// The print log page works fully without this script. It only makes its dialogs behave like
// dialogs: one Edit dialog (or the Clear confirmation) open at a time, and Escape closes it.
(function () {
  'use strict';

  function dialogs() {
    return document.querySelectorAll('details.row-edit[open], details.clear-log[open]');
  }

  document.addEventListener('toggle', function (event) {
    var opened = event.target;
    if (!opened.open || !opened.matches || !opened.matches('details.row-edit, details.clear-log')) return;
    dialogs().forEach(function (other) { if (other !== opened) other.open = false; });
  }, true);

  document.addEventListener('keydown', function (event) {
    if (event.key !== 'Escape') return;
    dialogs().forEach(function (d) { d.open = false; });
  });
})();
