// Drives `workos.auditLogs.createEvent` (@workos-inc/node 8.13) against a Stele server through
// a small proxy that loses the answer to the first event request after Stele has stored it (the
// connection is cut), as a network failure would: the SDK must retry with the same
// Idempotency-Key and Stele must answer the retry without storing the event twice. Arguments:
// Stele's port, a platform key, an organization's external id. Prints a JSON report.
const http = require("node:http");
const { WorkOS } = require("@workos-inc/node");

const [port, key, organization] = process.argv.slice(2);

// What the proxy saw of each event request: its idempotency key, and whether the answer was
// cut.
const seen = [];
let cutNext = true;

const proxy = http.createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    const forwarded = http.request(
      {
        host: "127.0.0.1",
        port: Number(port),
        method: request.method,
        path: request.url,
        headers: request.headers,
      },
      (answer) => {
        const body = [];
        answer.on("data", (chunk) => body.push(chunk));
        answer.on("end", () => {
          const isEvent = request.url === "/audit_logs/events";
          if (isEvent) {
            seen.push({
              idempotencyKey: request.headers["idempotency-key"],
              status: answer.statusCode,
              cut: cutNext,
            });
          }
          if (isEvent && cutNext) {
            // Stele has answered (and stored); the client never hears it.
            cutNext = false;
            request.socket.destroy();
            return;
          }
          response.writeHead(answer.statusCode, answer.headers);
          response.end(Buffer.concat(body));
        });
      },
    );
    forwarded.end(Buffer.concat(chunks));
  });
});

function thrown(e) {
  return { name: e.name, status: e.status, message: e.message, code: e.code };
}

async function main() {
  await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const options = { apiHostname: "127.0.0.1", port: proxy.address().port, https: false };
  const workos = new WorkOS(key, options);
  const report = {};
  // createEvent resolves with nothing once the server answered 2xx.
  await workos.auditLogs.createEvent(organization, {
    action: "user.signed_in",
    occurredAt: new Date("2024-05-01T12:34:56.789Z"),
    version: 1,
    actor: { type: "user", id: "user_1", name: "Jon", metadata: { role: "admin", n: 3, ok: true } },
    targets: [
      { type: "team", id: "team_1", name: "Team" },
      { type: "document", id: "doc_1", name: "Plan", metadata: { size: 3 } },
    ],
    context: { location: "203.0.113.7", userAgent: "Mozilla/5.0" },
    metadata: { extra: "x" },
  });
  report.created = true;
  report.seen = seen.slice();

  try {
    await workos.auditLogs.createEvent(organization, {
      action: "user.signed_in",
      occurredAt: new Date("2024-05-01T12:34:56.789Z"),
      actor: { type: "user", id: "user_1" },
      targets: [{ id: "team_1" }],
      context: { location: "203.0.113.7" },
    });
    report.invalid = { resolved: true };
  } catch (e) {
    report.invalid = { thrown: thrown(e) };
  }
  proxy.close();
  process.stdout.write(JSON.stringify(report));
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
