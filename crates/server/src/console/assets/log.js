// The audit log page works fully without this script. It only adds:
// - the viewer's local time in the title of every <time> (on hover or focus),
// - expanding an entry by clicking anywhere on its row (not only on its details line),
// - applying the filter form as soon as a dropdown or a date changes.
(function () {
  'use strict';

  function localTime(el) {
    if (el.dataset.localised) return;
    var when = new Date(el.getAttribute('datetime'));
    if (isNaN(when.getTime())) return;
    el.title = when.toLocaleString(undefined, {
      dateStyle: 'full', timeStyle: 'long'
    }) + ' (your time)';
    el.dataset.localised = '1';
  }

  function onPoint(event) {
    var el = event.target.closest && event.target.closest('time[datetime]');
    if (el) localTime(el);
  }
  document.addEventListener('mouseover', onPoint);
  document.addEventListener('focusin', onPoint);

  document.addEventListener('click', function (event) {
    var row = event.target.closest && event.target.closest('tr.log-row');
    if (!row || event.target.closest('a, button, input, select, label, summary')) return;
    if (window.getSelection && String(window.getSelection())) return; // selecting text
    var details = row.nextElementSibling && row.nextElementSibling.querySelector('details.entry-details');
    if (details) details.open = !details.open;
  });

  document.addEventListener('change', function (event) {
    var el = event.target;
    var form = el.form;
    if (!form || !form.classList.contains('filters')) return;
    if (el.tagName === 'SELECT' || el.type === 'date') {
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    }
  });
})();
