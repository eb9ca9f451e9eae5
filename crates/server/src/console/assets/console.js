// Stele console: the little JavaScript the pages use, served from the binary. Pages work without
// it for reading.
"use strict";

(function () {
  // The session's CSRF token, which the layout puts in <meta name="csrf-token">.
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // fetch() for requests that change something: adds the X-CSRF-Token header the server
  // requires on every console request that is not a GET.
  function send(url, options) {
    options = options || {};
    var headers = new Headers(options.headers || {});
    headers.set("X-CSRF-Token", csrfToken());
    options.headers = headers;
    options.credentials = "same-origin";
    return fetch(url, options);
  }

  window.stele = { csrfToken: csrfToken, send: send };
})();
