// Driven by tests/test_programs_pubsub.py: ioredis in subscriber mode and a BRPOP.
// Usage: node pubsub.js PORT CHANNEL PATTERN LIST
// Prints one JSON object per line on stdout: {"event": "ready"} once subscribed to
// CHANNEL and PATTERN and while the BRPOP on LIST is being sent, then one line per
// message, pmessage and BRPOP reply; exits 0 once it has all three (or 1 on an error).
"use strict";
const Redis = require("ioredis");

const [port, channel, pattern, list] = process.argv.slice(2);
const options = { port: Number(port), host: "127.0.0.1", maxRetriesPerRequest: 0, enableOfflineQueue: false,
                  lazyConnect: true, retryStrategy: () => null };
const sub = new Redis(options);
const blocker = new Redis(options);
const got = new Set();

function say(obj) { process.stdout.write(JSON.stringify(obj) + "\n"); }
function fail(err) { say({ event: "error", message: String(err && err.message || err) }); process.exit(1); }
function done(kind) {
  got.add(kind);
  if (got.size === 3) {
    sub.disconnect();
    blocker.disconnect();
    process.exit(0);
  }
}

sub.on("message", (ch, message) => { say({ event: "message", channel: ch, message }); done("message"); });
sub.on("pmessage", (pat, ch, message) => { say({ event: "pmessage", pattern: pat, channel: ch, message }); done("pmessage"); });
sub.on("error", fail);
blocker.on("error", fail);

(async () => {
  await sub.connect();
  await blocker.connect();
  const count = await sub.subscribe(channel);
  const pcount = await sub.psubscribe(pattern);
  // While subscribed, ioredis refuses other commands on `sub`: that is subscriber mode.
  let refused = false;
  try { await sub.get("x"); } catch (e) { refused = /subscriber mode/i.test(e.message); }
  say({ event: "ready", count, pcount, refused });
  const popped = await blocker.brpop(list, 20);
  say({ event: "brpop", reply: popped });
  done("brpop");
})().catch(fail);
