// Test harness only: resolve every *.localhost name to loopback (RFC 6761), which glibc's
// getaddrinfo does not do without systemd-resolved or nss-myhostname. Node's net module looks
// dns.lookup up at each connect, so replacing it here covers every socket the SDK opens.
"use strict";
const dns = require("node:dns");
const lookup = dns.lookup;
dns.lookup = function (host, options, callback) {
  if (typeof host === "string" && host.toLowerCase().endsWith(".localhost")) {
    host = "127.0.0.1";
  }
  return lookup.call(this, host, options, callback);
};
