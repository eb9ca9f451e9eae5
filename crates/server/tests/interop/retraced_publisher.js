// Drives @retracedhq/retraced's publisher client against a Stele server, as an application moving
// from Retraced would (only the endpoint's host changes): one event, a bulk of events whose
// receipt hashes the library verifies itself, a viewer token, and an event Retraced refuses.
// Arguments: the server's port, a platform key, the platform's id (Retraced's projectId).
// Prints a JSON report.
const Retraced = require("@retracedhq/retraced");

const [port, apiKey, projectId] = process.argv.slice(2);
const client = new Retraced.Client({
  apiKey,
  projectId,
  endpoint: `http://127.0.0.1:${port}/auditlog`,
  component: "web",
  version: "abc123",
});

async function main() {
  const report = {};
  // reportEvent resolves with the id only once the library's own hash of the event matches
  // the server's.
  report.one = await client.reportEvent({
    action: "document.update",
    group: { id: "acme", name: "Acme Inc" },
    crud: "u",
    created: new Date("2024-05-01T12:34:56.789Z"),
    actor: { id: "user@acme.test", name: "Jo User", href: "https://acme.test/u/1", fields: { dept: "ops" } },
    target: { id: "doc:42", name: "Q2 plan", href: "https://acme.test/d/42", type: "document", fields: { size: "10" } },
    source_ip: "203.0.113.7",
    description: "Updated the doc",
    is_failure: false,
    is_anonymous: false,
    fields: { "b;k": "v=1", a: "50%", "ключ": "значение" },
    external_id: "ext:1",
    metadata: { trace: "abc" },
  });
  report.bulk = await client.reportEvents([
    { action: "user.login", crud: "r", group: { id: "acme" }, actor: { id: "u:1" }, fields: {} },
    { action: "report.export", crud: "c", group: { id: "globex" }, is_anonymous: true, metadata: {} },
    {
      action: "team.delete",
      crud: "d",
      group: { id: "acme" },
      actor: { id: "admin%1", name: "Ädmin" },
      target: { id: "t=1;x" },
      is_failure: true,
      fields: { "=;%:": "%:=;" },
    },
  ]);
  report.token = await client.getViewerToken("acme", "user@acme.test", true);
  // The project's search, every group at once, two events a page.
  const mask = {
    id: true, action: true, crud: true, description: true,
    group: { id: true }, actor: { id: true, name: true, fields: true },
    target: { id: true, type: true }, fields: true,
  };
  const connection = await client.query({ crud: "c,u,d" }, mask, 2);
  report.search = { totalCount: connection.totalCount, pages: [connection.currentResults] };
  while (connection.hasNextPage()) {
    await connection.nextPage();
    report.search.pages.push(connection.currentResults);
  }
  try {
    // Retraced's server requires `crud`; the library does not.
    await client.reportEvent({ action: "x.y", group: { id: "acme" }, actor: { id: "u" } });
    report.refused = { resolved: true };
  } catch (e) {
    report.refused = { thrown: e.message };
  }
  process.stdout.write(JSON.stringify(report));
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
