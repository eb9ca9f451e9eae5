// Prints the Retraced client library's own receipt hash of each event: reads a JSON array of
// {id, event} from the file named by the first argument, writes a JSON array of hashes.
const fs = require("fs");
const { computeHash } = require("@retracedhq/retraced/lib/event.js");
const cases = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const hashes = cases.map(({ id, event }) => computeHash(event, id).hashResult);
process.stdout.write(JSON.stringify(hashes));
