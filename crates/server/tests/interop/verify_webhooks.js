// Checks log stream deliveries with the Standard Webhooks reference library (standardwebhooks
// 1.3 on npm), as a receiver would: `new Webhook(secret).verify(body, headers)`. Arguments: a
// JSON file of deliveries (`[{"headers": {...}, "body_base64": "..."}]`), then the secrets to try
// (`whsec_...`). Prints, for each delivery, the indexes of the secrets that verify it and the
// entries of the verified payload.
const fs = require("node:fs");
const { Webhook } = require("standardwebhooks");

const [file, ...secrets] = process.argv.slice(2);
const deliveries = JSON.parse(fs.readFileSync(file, "utf8"));
const report = deliveries.map((delivery) => {
  const body = Buffer.from(delivery.body_base64, "base64");
  const verifiedBy = [];
  let entries = null;
  secrets.forEach((secret, index) => {
    try {
      const payload = new Webhook(secret).verify(body, delivery.headers);
      verifiedBy.push(index);
      entries = payload.data.entries.map((entry) => entry.seq);
    } catch (error) {
      if (error.name !== "WebhookVerificationError") {
        throw error;
      }
    }
  });
  return { verified_by: verifiedBy, entries };
});
process.stdout.write(JSON.stringify(report));
