// Drives the WorkOS Node SDK (@workos-inc/node 8.13) against a Stele server, as an application
// moving from WorkOS would: exports (created, polled, downloaded through their url), a schema,
// an Admin Portal link, and the errors the SDK raises from Stele's answers. Arguments: the
// server's port, a platform key, an organization's external id. Prints a JSON report.
const { WorkOS } = require("@workos-inc/node");

const [port, key, organization] = process.argv.slice(2);
const options = { apiHostname: "127.0.0.1", port: Number(port), https: false };
const workos = new WorkOS(key, options);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// What the SDK threw: its class, status, message, request id and kept details.
function thrown(e) {
  return {
    name: e.name,
    status: e.status,
    message: e.message,
    requestID: e.requestID,
    code: e.code,
    errors: e.errors,
  };
}

async function attempt(call) {
  try {
    return { resolved: await call() };
  } catch (e) {
    return { thrown: thrown(e) };
  }
}

async function main() {
  const report = {};
  const created = await workos.auditLogs.createExport({
    organizationId: organization,
    rangeStart: new Date("2024-01-01T00:00:00.000Z"),
    rangeEnd: new Date("2024-02-01T00:00:00.000Z"),
    actions: ["user.signed_in"],
    targets: ["team"],
  });
  report.created = created;
  let polled = created;
  for (let i = 0; i < 600 && polled.state === "pending"; i++) {
    await sleep(50);
    polled = await workos.auditLogs.getExport(created.id);
  }
  report.polled = polled;
  // As WorkOS's documentation says to: fetch the url as given, no key.
  const download = await fetch(polled.url);
  report.download = { status: download.status, body: await download.text() };

  report.schema = await workos.auditLogs.createSchema({
    action: "user.signed_in",
    actor: { metadata: { role: "string" } },
    targets: [{ type: "team", metadata: { size: "number" } }, { type: "doc" }],
    metadata: { extra: "boolean" },
  });
  report.link = await workos.portal.generateLink({
    intent: "audit_logs",
    organization,
    returnUrl: "https://app.test/back",
  });
  report.streamsLink = await workos.portal.generateLink({
    intent: "log_streams",
    organization,
  });

  report.unknownExport = await attempt(() =>
    workos.auditLogs.getExport("audit_log_export_01GBZK5MP7TD1YCFQHFR22180V"),
  );
  report.unknownOrganization = await attempt(() =>
    workos.auditLogs.createExport({
      organizationId: "nobody",
      rangeStart: new Date("2024-01-01T00:00:00.000Z"),
      rangeEnd: new Date("2024-02-01T00:00:00.000Z"),
    }),
  );
  report.otherIntent = await attempt(() =>
    workos.portal.generateLink({ intent: "sso", organization }),
  );
  report.badSchema = await attempt(() =>
    workos.auditLogs.createSchema({ action: "user signed in", targets: [] }),
  );
  report.wrongKey = await attempt(() =>
    new WorkOS("sk_not_a_key", options).auditLogs.getExport(created.id),
  );
  process.stdout.write(JSON.stringify(report));
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
