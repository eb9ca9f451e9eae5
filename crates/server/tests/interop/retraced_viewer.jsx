// The page a platform embeds Retraced's viewer in, as its docs show: `RetracedEventsBrowser`
// with `host` at the audit service's `/viewer/v1`, a viewer token its backend minted, and a
// `refreshToken` that asks the backend for a new one. The console test
// `retraced_viewer` bundles it with esbuild and serves it on another origin than Stele's;
// `window.VIEWER` ({host, token}) is set by that page.
import React, { useCallback, useState } from "react";
import { createRoot } from "react-dom/client";
import RetracedEventsBrowser from "@retracedhq/logs-viewer";

function App() {
  const [token, setToken] = useState(window.VIEWER.token);
  const refreshToken = useCallback(() => {
    window.refreshes = (window.refreshes || 0) + 1;
    fetch("/token")
      .then((r) => r.text())
      .then(setToken);
  }, []);
  return (
    <RetracedEventsBrowser
      host={window.VIEWER.host}
      auditLogToken={token}
      header="Audit log"
      refreshToken={refreshToken}
    />
  );
}

createRoot(document.getElementById("root")).render(<App />);
