// The embedded audit log's side of the refresh handshake (docs/platforms.md). When the session
// has ended, the page asks the page that embeds it for a new viewer token, then reopens the same
// view with it (the log with its filters, or the log streams); no dead page, and no cookie
// needed.
(function () {
  "use strict";
  if (document.body.dataset.steleSession !== "ended" || window.parent === window) {
    return;
  }
  var streams = /^\/embed\/(s\/[^/]+\/)?streams(\/|$)/.test(location.pathname);
  var filters = new URLSearchParams(streams ? "" : location.search);
  filters.delete("token");
  window.addEventListener("message", function (event) {
    var data = event.data;
    if (event.source !== window.parent || !data || data.type !== "stele:token" ||
        typeof data.token !== "string") {
      return;
    }
    var query = new URLSearchParams(filters);
    query.set("token", data.token);
    location.replace((streams ? "/embed/streams?" : "/embed/log?") + query.toString());
  });
  // The message carries no secret, so any parent may hear it; only a token it sends back opens
  // a view, and the server checks that token.
  window.parent.postMessage({ type: "stele:session-expired" }, "*");
})();
